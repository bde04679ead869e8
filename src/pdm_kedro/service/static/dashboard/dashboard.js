/* pdm_kedro fleet dashboard: hand-written, no libraries, inline SVG charts.
   The API key lives in sessionStorage (this tab only) and goes in the X-API-Key header; it is
   never put in a URL. Routes: #/ (fleet) and #/machine/<id>. */
"use strict";
(function () {
  const KEY = "pdmApiKey";
  const $ = (id) => document.getElementById(id);
  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const fmt = (v, d = 2) => (v == null || Number.isNaN(v) ? "–" : Number(v).toFixed(d));
  const pct = (v) => (v == null ? "–" : (100 * v).toFixed(1) + " %");
  const NA = '<span class="muted">not available</span>';
  let pollTimer = null;

  class AuthError extends Error {}

  async function api(path, options = {}) {
    const key = sessionStorage.getItem(KEY);
    if (!key) throw new AuthError("Enter an API key.");
    const headers = Object.assign({ "X-API-Key": key, Accept: "application/json" }, options.headers || {});
    const response = await fetch(path, Object.assign({}, options, { headers }));
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (response.status === 401) {
      sessionStorage.removeItem(KEY);
      throw new AuthError("API key refused: " + ((body && body.error && body.error.message) || "HTTP 401"));
    }
    if (!response.ok) {
      const err = new Error((body && body.error && body.error.message) || ("HTTP " + response.status));
      err.status = response.status;
      throw err;
    }
    return body;
  }

  function showLogin(message) {
    $("view").hidden = true; $("view").innerHTML = "";
    $("login").hidden = false; $("logout").hidden = true; $("source").textContent = "";
    $("login-error").textContent = message || "";
    $("api-key").focus();
  }

  function showView(html) {
    $("login").hidden = true; $("logout").hidden = false;
    $("view").innerHTML = html; $("view").hidden = false;
  }

  // ---------------------------------------------------------------- charts (inline SVG)
  function chart(opts) {
    // opts: {series:[{values, color, label}], band:{lower, upper}, flags:[bool], threshold, labels:[str], height, yLabel}
    const W = 640, H = opts.height || 200, L = 48, R = 10, T = 10, B = 24;
    const all = [];
    opts.series.forEach((s) => s.values.forEach((v) => { if (v != null) all.push(v); }));
    if (opts.band) [opts.band.lower, opts.band.upper].forEach((a) => a.forEach((v) => { if (v != null) all.push(v); }));
    if (opts.threshold != null) all.push(opts.threshold);
    if (!all.length) return '<p class="muted">no values</p>';
    let lo = Math.min(...all), hi = Math.max(...all);
    if (opts.yMin != null) lo = Math.min(lo, opts.yMin);
    if (hi === lo) { hi += 1; lo -= 1; }
    const n = Math.max(...opts.series.map((s) => s.values.length), opts.band ? opts.band.lower.length : 0);
    const x = (i) => L + (n <= 1 ? 0 : (i * (W - L - R)) / (n - 1));
    const y = (v) => T + ((hi - v) * (H - T - B)) / (hi - lo);
    const path = (values) => {
      let d = "", pen = false;
      values.forEach((v, i) => {
        if (v == null) { pen = false; return; }
        d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1); pen = true;
      });
      return d;
    };
    let svg = `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(opts.title || "chart")}">`;
    for (let k = 0; k <= 4; k++) {
      const v = lo + ((hi - lo) * k) / 4;
      svg += `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e7eb"/>`;
      svg += `<text x="${L - 4}" y="${y(v) + 4}" text-anchor="end">${esc(fmt(v, Math.abs(hi - lo) < 5 ? 2 : 0))}</text>`;
    }
    if (opts.flags) {
      opts.flags.forEach((f, i) => {
        if (f) svg += `<rect class="anomaly-flag" x="${(x(i) - 1.5).toFixed(1)}" y="${T}" width="3" height="${H - T - B}" fill="#fecaca"/>`;
      });
    }
    if (opts.band) {
      const up = opts.band.upper, low = opts.band.lower;
      let d = "";
      up.forEach((v, i) => { if (v != null) d += (d ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1); });
      for (let i = low.length - 1; i >= 0; i--) if (low[i] != null) d += "L" + x(i).toFixed(1) + " " + y(low[i]).toFixed(1);
      if (d) svg += `<path class="interval" d="${d}Z" fill="#bfdbfe" opacity="0.7"/>`;
    }
    if (opts.threshold != null) {
      svg += `<line class="threshold" x1="${L}" x2="${W - R}" y1="${y(opts.threshold)}" y2="${y(opts.threshold)}" stroke="#b42318" stroke-dasharray="4 3"/>`;
    }
    opts.series.forEach((s) => {
      svg += `<path class="series" d="${path(s.values)}" fill="none" stroke="${s.color || "#1d4ed8"}" stroke-width="1.6"><title>${esc(s.label || "")}</title></path>`;
    });
    if (opts.labels && opts.labels.length) {
      const first = opts.labels[0], last = opts.labels[opts.labels.length - 1];
      svg += `<text x="${L}" y="${H - 6}">${esc(String(first).replace("T", " ").slice(0, 16))}</text>`;
      svg += `<text x="${W - R}" y="${H - 6}" text-anchor="end">${esc(String(last).replace("T", " ").slice(0, 16))}</text>`;
    }
    return svg + "</svg>";
  }

  // ---------------------------------------------------------------- fleet overview
  function riskBadge(m) {
    if (m.risk == null) return '<span class="badge muted">–</span>';
    const cls = m.decision ? "bad" : m.risk >= 0.5 * (m.threshold || 1) ? "warn" : "ok";
    return `<span class="badge ${cls}">${pct(m.risk)}${m.decision ? " alert" : ""}</span>`;
  }

  function reasonsText(r) {
    if (!r) return NA;
    const list = Array.isArray(r) ? r : (r.failure || r.top || r.reasons || Object.values(r)[0]);
    if (!Array.isArray(list) || !list.length) return esc(JSON.stringify(r).slice(0, 160));
    return list.slice(0, 3).map((x) => esc(typeof x === "string" ? x : (x.label || x.feature || x.sensor || JSON.stringify(x)))).join("<br>");
  }

  function diagnosisText(m) {
    const d = m.diagnosis;
    if (!d) return NA;
    return `${esc(d.mode || d.failure_mode || "")}${d.confidence != null ? " (" + pct(d.confidence) + ")" : ""}` +
      (d.action ? `<br><span class="muted">${esc(d.action)}</span>` : "");
  }

  function trendText(t) {
    if (!t || t.delta == null) return NA;
    const arrow = t.direction === "rising" ? "▲" : t.direction === "falling" ? "▼" : "▶";
    const cls = t.direction === "rising" ? "bad" : t.direction === "falling" ? "ok" : "muted";
    return `<span class="${cls}">${arrow} ${esc(t.direction)}</span> <span class="muted">${(t.delta >= 0 ? "+" : "") + (100 * t.delta).toFixed(1)} pts / ${t.hours} h</span>`;
  }

  async function renderFleet() {
    const data = await api("/v1/dashboard/fleet");
    $("source").textContent = "Readings: " + data.readings_source + " · generated " + data.generated_at;
    const rows = data.machines.map((m) => {
      const loses = Object.entries(m.loses_to_baseline || {}).filter(([, v]) => v.length).map(([f]) => f);
      const anomaly = m.anomaly == null ? "–" : m.anomaly
        ? '<span class="badge bad">anomalous</span>' : '<span class="badge ok">normal</span>';
      return `<tr data-machine="${esc(m.machine_id)}">
        <td><a href="#/machine/${encodeURIComponent(m.machine_id)}">${esc(m.machine_id)}</a>${m.error ? `<br><span class="error">${esc(m.error)}</span>` : ""}</td>
        <td class="num risk" data-value="${m.risk == null ? "" : m.risk}">${riskBadge(m)}</td>
        <td class="num rul" data-value="${m.rul_hours == null ? "" : m.rul_hours}">${fmt(m.rul_hours, 1)} h</td>
        <td class="anomaly">${anomaly}<br><span class="muted">${m.anomalous_share_24h == null ? "" : pct(m.anomalous_share_24h) + " of 24 h"}</span></td>
        <td class="trend">${trendText(m.trend)}</td>
        <td class="reasons">${reasonsText(m.reasons)}</td>
        <td class="diagnosis">${diagnosisText(m)}</td>
        <td class="baseline">${loses.length ? '<span class="bad">loses to baseline: ' + esc(loses.join(", ")) + "</span>" : '<span class="ok">beats baselines</span>'}</td>
      </tr>`;
    }).join("");
    showView(`<h1>Fleet overview <span class="muted">(${data.machines.length} machine${data.machines.length === 1 ? "" : "s"}, highest failure risk first)</span></h1>
      <div class="table-wrap"><table id="fleet-table"><thead><tr>
        <th>Machine</th><th>Failure risk</th><th>RUL</th><th>Anomaly</th><th>Trend</th><th>Top reasons</th><th>Diagnosis and action</th><th>Models</th>
      </tr></thead><tbody>${rows}</tbody></table></div>`);
  }

  // ---------------------------------------------------------------- machine page
  function metricsTable(models) {
    const rows = [];
    Object.entries(models).forEach(([family, s]) => {
      s.metrics.forEach((r) => rows.push(`<tr><td>${esc(family)}</td><td>${esc(s.version.served_version)}</td><td>${esc(r.metric)}</td>
        <td class="num">${fmt(r.value, 3)}</td><td class="num">${fmt(r.baseline, 3)}</td><td>${esc(r.baseline_name || "")}</td>
        <td>${r.beats_baseline === false ? '<span class="bad">loses to baseline</span>' : r.beats_baseline ? '<span class="ok">beats</span>' : "–"}</td></tr>`));
    });
    return `<div class="table-wrap"><table id="models-table"><thead><tr><th>Family</th><th>Version</th><th>Metric (test)</th><th>Model</th><th>Baseline</th><th>Baseline is</th><th></th></tr></thead><tbody>${rows.join("")}</tbody></table></div>`;
  }

  function versionsTable(perf) {
    const rows = [];
    Object.entries(perf.families).forEach(([family, f]) => f.versions.forEach((v) => {
      const head = v.metrics.slice(0, 3).map((r) => `${esc(r.metric)} ${fmt(r.value, 3)} <span class="muted">(baseline ${fmt(r.baseline, 3)})</span>`).join("<br>");
      rows.push(`<tr><td>${esc(family)}</td><td>${esc(v.version)}</td><td>${esc(v.aliases.join(", "))}</td><td>${esc(v.created_at)}</td><td>${esc(v.champion_decision || "")}</td><td>${head}</td></tr>`);
    }));
    return `<div class="table-wrap"><table id="versions-table"><thead><tr><th>Family</th><th>Registry version</th><th>Aliases</th><th>Created</th><th>Promotion decision</th><th>Metrics beside baselines</th></tr></thead><tbody>${rows.join("")}</tbody></table></div>`;
  }

  function monitoringHtml(mon) {
    if (!mon) return NA;
    const entries = Array.isArray(mon) ? mon : [mon];
    const rows = entries.slice(-14).map((e) => {
      const perf = e.performance || {};
      const drift = e.drift || {};
      return `<tr><td>${esc(e.date || e.day || e.window_end || "")}</td><td>${esc(drift.flagged == null ? "" : drift.flagged)}</td>
        <td>${esc(JSON.stringify(perf).slice(0, 160))}</td></tr>`;
    }).join("");
    return `<div class="table-wrap"><table id="monitoring-table"><thead><tr><th>Day</th><th>Drift flagged</th><th>Realised performance (vs champion test)</th></tr></thead><tbody>${rows}</tbody></table></div>`;
  }

  function retrainingHtml(rows) {
    if (!rows) return NA;
    if (!rows.length) return '<p class="muted">no decisions for this machine yet</p>';
    return `<div class="table-wrap"><table id="retraining-table"><thead><tr><th>When</th><th>Retrain</th><th>Triggers</th></tr></thead><tbody>${rows.slice(-20).reverse().map((r) =>
      `<tr><td>${esc(r.decided_at || r.timestamp || r.date || "")}</td><td>${esc(r.retrain == null ? "" : r.retrain)}</td><td>${esc(JSON.stringify(r.triggers || r.reasons || "").slice(0, 200))}</td></tr>`).join("")}</tbody></table></div>`;
  }

  function forecastHtml(fc) {
    if (!fc) return NA;
    return Object.entries(fc.sensors).map(([name, s]) => `<div class="card forecast" data-sensor="${esc(name)}"><h3>${esc(name)} <span class="muted">${esc(s.unit || "")}, next ${s.forecast.length} h from ${esc(fc.origin)}</span></h3>
      ${chart({ title: name + " forecast", series: [{ values: s.forecast, color: "#1d4ed8", label: "forecast" }], band: { lower: s.lower, upper: s.upper }, labels: fc.hours, height: 160 })}</div>`).join("");
  }

  async function renderMachine(id) {
    const m = await api("/v1/dashboard/machines/" + encodeURIComponent(id));
    $("source").textContent = "Readings: " + m.readings_source;
    const flags = m.anomaly.flag;
    const flagged = flags.filter(Boolean).length;
    const sensorCharts = Object.entries(m.sensors).map(([name, s]) => `<div class="card sensor" data-sensor="${esc(name)}"><h3>${esc(name)} <span class="muted">${esc(s.unit || "")}</span></h3>
      ${chart({ title: name, series: [{ values: s.values, color: "#0f766e", label: name }], flags, labels: m.timestamp, height: 150 })}</div>`).join("");
    showView(`<p><a href="#/">← fleet</a></p>
      <h1 id="machine-title">${esc(m.machine_id)}</h1>
      <div class="kv"><span class="muted">Bundle</span><span>${esc(m.bundle_version)} (trained ${esc(m.trained_at)})</span>
        <span class="muted">Rows shown</span><span id="rows-shown">${m.timestamp.length} of ${m.rows}</span>
        <span class="muted">Anomaly flags</span><span id="flag-count">${flagged} rows flagged (${esc(m.anomaly.detector || "")}, threshold ${fmt(m.anomaly.threshold, 3)})</span>
        <span class="muted">Diagnosis</span><span>${diagnosisText(m)}</span>
        <span class="muted">Top reasons</span><span>${reasonsText(m.reasons)}</span></div>
      <h2>Failure risk and RUL over the window</h2>
      <div class="grid"><div class="card" id="risk-chart"><h3>Failure probability <span class="muted">threshold ${fmt(m.failure.threshold, 3)}, horizon ${fmt(m.failure.horizon_hours, 0)} h</span></h3>
        ${chart({ title: "failure probability", series: [{ values: m.failure.probability, color: "#b42318", label: "probability" }], threshold: m.failure.threshold, labels: m.timestamp, yMin: 0 })}</div>
        <div class="card" id="rul-chart"><h3>RUL (hours) <span class="muted">cap ${fmt(m.rul_hours.cap_hours, 0)} h</span></h3>
        ${chart({ title: "RUL", series: [{ values: m.rul_hours.value, color: "#7c3aed", label: "RUL" }], labels: m.timestamp, yMin: 0 })}</div></div>
      <h2>Recent sensor readings <span class="muted">(red bands: anomaly flags)</span></h2><div class="grid" id="sensors">${sensorCharts}</div>
      <h2>24 h forecast with intervals</h2><div class="grid" id="forecast">${forecastHtml(m.forecast)}</div>
      <h2>Served models beside baselines</h2>${metricsTable(m.models)}
      <h2>Registered versions</h2><div id="versions"><p class="muted">loading…</p></div>
      <h2>Monitoring</h2><div id="monitoring">${monitoringHtml(m.monitoring)}</div>
      <h2>Retraining decisions</h2><div id="retraining">${retrainingHtml(m.retraining)}</div>
      <h2>Training (admin)</h2><div class="card" id="training"><form id="train-form"><button class="primary" type="submit">Start training ${esc(m.machine_id)}</button></form>
        <div id="job"></div></div>`);
    api("/v1/machines/" + encodeURIComponent(id) + "/performance")
      .then((p) => { $("versions").innerHTML = versionsTable(p); })
      .catch((e) => { $("versions").innerHTML = `<p class="error">${esc(e.message)}</p>`; });
    $("train-form").addEventListener("submit", (ev) => { ev.preventDefault(); startTraining(id); });
  }

  function jobHtml(j) {
    const p = j.progress || {};
    return `<div class="kv"><span class="muted">Job</span><span id="job-id">${esc(j.job_id)}</span>
      <span class="muted">State</span><span id="job-state">${esc(j.state)}</span>
      <span class="muted">Progress</span><span id="job-progress">${esc(JSON.stringify(p))}</span>
      ${j.error ? `<span class="muted">Error</span><span class="error">${esc(j.error)}</span>` : ""}</div>
      <pre class="log">${esc((j.log_tail || []).join("\n"))}</pre>`;
  }

  async function startTraining(id) {
    const box = $("job");
    box.innerHTML = '<p class="muted">starting…</p>';
    try {
      const accepted = await api("/v1/machines/" + encodeURIComponent(id) + "/training", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
      const poll = async () => {
        const j = await api(accepted.status_url);
        if (!$("job")) return;
        $("job").innerHTML = jobHtml(j);
        if (j.state === "queued" || j.state === "running") pollTimer = setTimeout(poll, 2000);
      };
      await poll();
    } catch (e) {
      if (e instanceof AuthError) return showLogin(e.message);
      box.innerHTML = `<p class="error" id="train-error">${esc(e.message)}</p>`;
    }
  }

  // ---------------------------------------------------------------- routing
  async function route() {
    clearTimeout(pollTimer);
    if (!sessionStorage.getItem(KEY)) return showLogin("");
    const match = location.hash.match(/^#\/machine\/(.+)$/);
    try {
      if (match) await renderMachine(decodeURIComponent(match[1]));
      else await renderFleet();
    } catch (e) {
      if (e instanceof AuthError) return showLogin(e.message);
      showView(`<p class="error" id="view-error">${esc(e.message)}</p><p><a href="#/">← fleet</a></p>`);
    }
  }

  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("api-key").value.trim());
    $("api-key").value = "";
    route();
  });
  $("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); showLogin(""); });
  window.addEventListener("hashchange", route);
  route();
})();
