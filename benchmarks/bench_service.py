"""Load test of the prediction service: wrk against ``pdm-kedro serve`` on loopback.

    python benchmarks/bench_service.py --data-root DIR [--seconds 20] [--connections 16]
                                       [--workers 1] [--hot-reload train|republish]
                                       [--existing-bundles]

Needs the bundles of the 10 priority machines under ``DIR/06_models``: when there are none it
first runs the default ``kedro run`` into ``DIR`` (MLflow store beside it, ``PDM_MLFLOW_TRACKING_URI``
overrides), in a temporary project shim so nothing is written into the project. Then it starts
the service (``--workers`` uvicorn processes) on a free loopback port and drives it with wrk
(``-d`` seconds, ``-c`` connections: bounded in time and connections), one scenario at a time:

- ``single_family``: ``POST /v1/machines/<m>/predict/classification`` with the machine's minimum
  history (``min_history_rows`` readings);
- ``all_families_48h``: ``POST /v1/machines/<m>/predict`` (all four answers) with a 48 h window
  from an episode's first reading (``from_episode_start``);
- ``batch_100``: ``POST /v1/predict/batch`` with 10 items, one per priority machine, 10 rows each
  from an episode start with ``all_rows`` (100 rows scored, all four families);
- ``hot_reload``: ``single_family`` load while a new model is promoted: ``train`` starts a real
  training job through the API (``kedro run --namespaces <m>``) and waits for the swap;
  ``republish`` rewrites the machine's bundle files in place with a new ``created_at``.

wrk's Lua ``done`` hook reports requests, non-2xx / socket errors and latency percentiles; the
server's peak RSS is VmHWM of its processes. The load generator shares the cores with the server
(and with whatever else runs on the machine): both are named in the report. Results go to
``DIR/08_reporting/service_benchmark.json``.

Targets (issue 12, 2 cores, load generator included): single_family >= 1,000 requests/s with
p99 <= 25 ms and 0 errors; all_families_48h >= 300 requests/s; 0 failed requests during a hot
reload; server RSS <= 400 MB with all 40 models loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MACHINE = "motor_siemens_1la7_001"
PREDICT_KEY = "bench-predict-key-0001"
ADMIN_KEY = "bench-admin-key-0002"
TARGETS = {
    "single_family": {"requests_per_s": 1000, "p99_ms": 25, "errors": 0},
    "all_families_48h": {"requests_per_s": 300},
    "hot_reload": {"failed_requests": 0},
    "server_peak_rss_mb": 400,
}
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "%(key)s"
local f = io.open("%(body)s", "rb")
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "non_2xx": %%d, "connect": %%d, "read": %%d, '
    .. '"write": %%d, "timeout": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def priority_machines() -> list[str]:
    params = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "parameters.yml").read_text())
    return list(params["fleet"]["priority_machines"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shim(folder: Path) -> Path:
    """A project folder backed by the real conf (kedro-viz writes ./.viz into the cwd)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", folder / "pyproject.toml")
    (folder / "src").mkdir(exist_ok=True)
    if not (folder / "conf").exists():
        (folder / "conf").symlink_to(PROJECT_ROOT / "conf", target_is_directory=True)
    return folder


def environment(data: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PDM_DATA_ROOT": str(data),
            "PDM_MLFLOW_TRACKING_URI": os.environ.get(
                "PDM_MLFLOW_TRACKING_URI", f"sqlite:///{data.parent / 'mlflow.db'}"
            ),
            "KEDRO_DISABLE_TELEMETRY": "1",
            "DO_NOT_TRACK": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "PDM_API_KEYS": f"{PREDICT_KEY}:predict,{ADMIN_KEY}:admin",
        }
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def ensure_bundles(data: Path, work: Path) -> float | None:
    """Run the default ``kedro run`` when a priority machine has no bundle; its wall time."""
    missing = [m for m in priority_machines() if not (data / "06_models" / m / "edge").is_dir()]
    if not missing:
        return None
    print(f"no bundles for {len(missing)} priority machines: running `kedro run` into {data}")
    kedro = Path(sys.executable).with_name("kedro")
    start = time.perf_counter()
    subprocess.run(
        [str(kedro if kedro.exists() else "kedro"), "run"],
        cwd=shim(work / "kedro_project"),
        env=environment(data),
        check=True,
        timeout=3600,
    )
    return time.perf_counter() - start


def episode_start(raw: pd.DataFrame, rows: int) -> pd.DataFrame:
    """The first ``rows`` readings of the longest episode of a raw split."""
    episode = raw["episode_id"].value_counts().idxmax()
    part = raw[raw["episode_id"] == episode].sort_values("timestamp", kind="stable")
    return part.iloc[:rows]


def readings(rows: pd.DataFrame, sensors: list[str]) -> dict:
    out = {
        "timestamp": [pd.Timestamp(t).isoformat() for t in rows["timestamp"]],
        "regime": rows["regime"].astype(str).tolist(),
    }
    out |= {s: [None if pd.isna(v) else float(v) for v in rows[s]] for s in sensors}
    return out


def bodies(data: Path, machines: list[str], work: Path) -> dict[str, Path]:
    """The three request bodies, written as files for wrk."""
    out = {}
    prepared = {}
    for machine in machines:
        manifest = json.loads((data / "06_models" / machine / "edge" / "manifest.json").read_text())
        raw = pd.read_parquet(data / "01_raw" / machine / "test.parquet")
        prepared[machine] = (manifest, raw, [s["name"] for s in manifest["sensors"]])
    manifest, raw, sensors = prepared[MACHINE]
    need = int(manifest["inputs"]["min_history_rows"])
    episode = raw["episode_id"].value_counts().idxmax()
    ep = raw[raw["episode_id"] == episode].sort_values("timestamp", kind="stable")
    recent = ep.iloc[len(ep) - need :]
    window_rows = round(48 * 60 / float(manifest["sampling_interval_min"]))
    payloads = {
        "single_family": {"readings": readings(recent, sensors)},
        "all_families_48h": {
            "readings": readings(episode_start(raw, window_rows), sensors),
            "from_episode_start": True,
        },
        "batch_100": {
            "items": [
                {
                    "machine_id": machine,
                    "readings": readings(
                        episode_start(prepared[machine][1], 10), prepared[machine][2]
                    ),
                    "all_rows": True,
                    "from_episode_start": True,
                }
                for machine in machines
            ]
        },
    }
    for name, payload in payloads.items():
        path = work / f"{name}.json"
        path.write_text(json.dumps(payload))
        out[name] = path
    return out


def edge_cost_ms(data: Path, payloads: dict[str, Path], repeats: int = 100) -> dict[str, float]:
    """In-process cost of the edge runtime alone on the same bodies (no HTTP, no JSON): p50 ms."""
    import numpy as np  # noqa: PLC0415

    from pdm_kedro.edge.bundle import EdgeBundle, load_bundle  # noqa: PLC0415
    from pdm_kedro.edge.runtime import predict  # noqa: PLC0415

    bundle = load_bundle(data / "06_models" / MACHINE / "edge")
    view = EdgeBundle(
        bundle.path, bundle.manifest, {"classification": bundle.sessions["classification"]}
    )
    out = {}
    for name, target, extra in (
        ("single_family", view, {}),
        ("all_families_48h", bundle, {"from_episode_start": True}),
    ):
        body = json.loads(payloads[name].read_text())["readings"]
        arrays = {
            k: (np.array(v, dtype="datetime64[s]") if k == "timestamp" else
                np.array(v, dtype=str) if k == "regime" else np.array(v, dtype=np.float64))
            for k, v in body.items()
        }  # fmt: skip
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            predict(target, arrays, **extra)
            times.append((time.perf_counter() - start) * 1000)
        out[name] = round(float(np.median(times)), 2)
    return out


def urls(base: str) -> dict[str, str]:
    return {
        "single_family": f"{base}/v1/machines/{MACHINE}/predict/classification",
        "all_families_48h": f"{base}/v1/machines/{MACHINE}/predict",
        "batch_100": f"{base}/v1/predict/batch",
    }


def http(
    method: str, url: str, key: str | None = None, body: bytes | None = None
) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method)
    if key:
        request.add_header("X-API-Key", key)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def process_tree_hwm_mb(pid: int) -> float:
    """Peak RSS (VmHWM) of a process and its children, in MB."""
    return round(sum(process_hwm_by_pid_mb(pid).values()), 1)


def process_hwm_by_pid_mb(pid: int) -> dict[str, float]:
    """Peak RSS (VmHWM) in MB of a process and each of its children, by ``pid command``."""
    out = {}
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        status = Path(f"/proc/{p}/status")
        if status.exists():
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out[f"{p} {cmd.strip()}"] = round(int(line.split()[1]) / 1024, 1)
    return out


def process_tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children (uvicorn workers)."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for p in pids:
        stat = Path(f"/proc/{p}/stat")
        if stat.exists():
            fields = stat.read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, body: Path, seconds: int, connections: int, threads: int, work: Path) -> dict:
    script = work / f"{body.stem}.lua"
    script.write_text(LUA % {"key": PREDICT_KEY, "body": body})
    result = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
         "--timeout", "10s", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 60, check=False,
    )  # fmt: skip
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary:\n{result.stdout}\n{result.stderr}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    socket_errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "requests": raw["requests"],
        "duration_s": round(raw["duration_us"] / 1e6, 2),
        "requests_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p95_ms": round(raw["p95_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "errors": raw["non_2xx"] + socket_errors,
        "non_2xx": raw["non_2xx"],
        "socket_errors": socket_errors,
        "connections": connections,
        "wrk_threads": threads,
    }


def hot_reload(base: str, body: Path, args, work: Path, data: Path) -> dict:
    """single_family load while a new model is promoted and swapped in."""
    _, before = http("GET", f"{base}/v1/machines", PREDICT_KEY)
    version_before = next(
        m["bundle_version"] for m in before["machines"] if m["machine_id"] == MACHINE
    )
    seconds = args.hot_reload_seconds
    script = work / "hot_reload.lua"
    script.write_text(LUA % {"key": PREDICT_KEY, "body": body})
    wrk = subprocess.Popen(
        ["wrk", "-t", "1", "-c", str(max(2, args.connections // 4)), "-d", f"{seconds}s",
         "--timeout", "10s", "-s", str(script), urls(base)["single_family"]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(3)
    detail: dict = {"mode": args.hot_reload}
    started = time.perf_counter()
    if args.hot_reload == "train":
        status, accepted = http("POST", f"{base}/v1/machines/{MACHINE}/training", ADMIN_KEY)
        detail["training_accepted"] = status
        job = {}
        while time.perf_counter() - started < seconds - 8 and status == 202:
            _, job = http("GET", f"{base}/v1/jobs/{accepted['job_id']}", ADMIN_KEY)
            if job.get("state") in ("succeeded", "failed"):
                break
            time.sleep(1)
        detail["job_state"] = job.get("state")
        detail["job_promotion"] = job.get("promotion")
    else:
        folder = data / "06_models" / MACHINE / "edge"
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        for onnx in sorted(folder.glob("*.onnx")):
            onnx.write_bytes(onnx.read_bytes())
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    swapped_after = None
    while time.perf_counter() - started < seconds - 3:
        _, now = http("GET", f"{base}/v1/machines", PREDICT_KEY)
        version = next(m["bundle_version"] for m in now["machines"] if m["machine_id"] == MACHINE)
        if version != version_before:
            swapped_after = round(time.perf_counter() - started, 1)
            break
        time.sleep(0.5)
    out, err = wrk.communicate(timeout=seconds + 60)
    line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary:\n{out}\n{err}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    failed = raw["non_2xx"] + raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "failed_requests": failed,
        "requests": raw["requests"],
        "requests_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "bundle_version_before": version_before,
        "swapped": swapped_after is not None,
        "swap_seen_after_s": swapped_after,
        **detail,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", required=True, type=Path, help="data root (PDM_DATA_ROOT)")
    parser.add_argument("--seconds", type=int, default=20, help="wrk duration per scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--hot-reload", choices=("train", "republish"), default="train")
    parser.add_argument("--hot-reload-seconds", type=int, default=150)
    parser.add_argument(
        "--existing-bundles",
        action="store_true",
        help="serve the bundles the data root has (at least the benchmark machine's) instead of "
        "training the missing priority machines first; the report counts the machines served",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    data = args.data_root.resolve()
    if (data / "data").is_dir() and not (data / "06_models").is_dir():
        data = data / "data"  # a root holding data/ and mlflow.db
    work = Path(tempfile.mkdtemp(prefix="bench_service_"))
    if args.existing_bundles:
        if not (data / "06_models" / MACHINE / "edge").is_dir():
            print(f"--existing-bundles: no bundle of {MACHINE} under {data}", file=sys.stderr)
            return 2
        kedro_seconds = None
    else:
        kedro_seconds = ensure_bundles(data, work)
    machines = [m for m in priority_machines() if (data / "06_models" / m / "edge").is_dir()]
    payloads = bodies(data, machines, work)
    edge_ms = edge_cost_ms(data, payloads)
    print(f"edge runtime alone, p50 ms per call: {edge_ms}")
    port = free_port()
    env = environment(data)
    conf = work / "conf"
    shutil.copytree(PROJECT_ROOT / "conf", conf, ignore=shutil.ignore_patterns("credentials*"))
    (conf / "base" / "service.yml").write_text(
        yaml.safe_dump(
            {
                "service": {
                    **yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "service.yml").read_text())[
                        "service"
                    ],
                    "rate_limits": {"predict": "10000000/minute", "admin": "600/minute"},
                }
            }
        )
    )
    pdm = Path(sys.executable).with_name("pdm-kedro")
    log = (work / "server.log").open("w")
    server = subprocess.Popen(
        [str(pdm if pdm.exists() else "pdm-kedro"), "serve", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(args.workers), "--conf-source", str(conf)],
        cwd=shim(work / "service_project"), env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    report: dict = {}
    load_at_start = list(os.getloadavg())
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                status, health = http("GET", f"{base}/health/ready")
                if status == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None:
                raise RuntimeError(f"server exited: {(work / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        else:
            raise RuntimeError("the service did not become ready in 300 s")
        print(f"service ready: {health}")
        scenarios = {}
        for name in ("single_family", "all_families_48h", "batch_100"):
            status, _ = http("POST", urls(base)[name], PREDICT_KEY, payloads[name].read_bytes())
            if status != 200:
                raise RuntimeError(f"{name}: the request answers {status}")
            cpu_before = process_tree_cpu_s(server.pid)
            scenarios[name] = run_wrk(
                urls(base)[name],
                payloads[name],
                args.seconds,
                args.connections,
                args.wrk_threads,
                work,
            )
            # CPU the server spent per answered request: what the load on the host hides least
            spent_s = process_tree_cpu_s(server.pid) - cpu_before
            scenarios[name]["server_cpu_ms_per_request"] = round(
                1000 * spent_s / max(1, scenarios[name]["requests"]), 2
            )
            scenarios[name]["body_bytes"] = payloads[name].stat().st_size
            print(name, scenarios[name])
        scenarios["single_family"]["request"] = (
            f"classification of {MACHINE} from its minimum history (min_history_rows readings)"
        )
        scenarios["all_families_48h"]["request"] = (
            f"all four answers of {MACHINE} from a 48 h window starting at an episode's first reading"
        )
        scenarios["batch_100"]["request"] = (
            f"/v1/predict/batch: {len(machines)} machines x 10 rows from an episode start, all_rows, "
            "all four families"
        )
        rss_before_reload = process_tree_hwm_mb(server.pid)
        rss_by_process = process_hwm_by_pid_mb(server.pid)
        scenarios["hot_reload"] = hot_reload(base, payloads["single_family"], args, work, data)
        print("hot_reload", scenarios["hot_reload"])
        report = {
            "cores": os.cpu_count(),
            "load_generator": f"wrk ({subprocess.run(['wrk', '--version'], capture_output=True, text=True, check=False).stdout.split(chr(10))[0].strip()}), same host, loopback",
            "server_peak_rss_mb": round(rss_before_reload, 1),
            "server_peak_rss_mb_by_process": rss_by_process,
            "server_peak_rss_mb_incl_hot_reload": round(process_tree_hwm_mb(server.pid), 1),
            "server": {
                "workers": args.workers,
                "machines": len(machines),
                "models": int(health["models"]),
            },
            "scenarios": scenarios,
            "targets": TARGETS,
            "edge_runtime_p50_ms_in_process": edge_ms,
            "kedro_run_seconds": None if kedro_seconds is None else round(kedro_seconds, 1),
            "load_average_at_start": load_at_start,
            "load_average_at_end": list(os.getloadavg()),
            "note": "server and load generator share the host's cores with every other process",
        }
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
        log.close()
    out = data / "08_reporting" / "service_benchmark.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
