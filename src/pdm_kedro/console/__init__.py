"""What an engineer sees while and after a run: progress, the run log file, the run summary.

- :mod:`.progress`: machines x stages done and running, with an ETA (rich on a terminal, one plain
  line per finished stage otherwise);
- :mod:`.runlog`: the full log of the run in ``<data root>/logs/kedro_run.log`` and log lines that
  name the machine (and family) of the node that wrote them;
- :mod:`.summary`: the end-of-run table (headline metric, baseline, ceiling, beats baseline, time)
  and ``08_reporting/run_summary.md``;
- :mod:`.hooks`: the Kedro hook that wires them into every run.
"""
