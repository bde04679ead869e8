"""Usage telemetry of every library the project uses: off unless ``PDM_TELEMETRY=on``.

Imported by the package root, so it runs before Kedro's plugins, MLflow or onnxruntime start
their own telemetry (standard library only: the edge runtime imports it too). Off means the
libraries' own documented switches are set for this process and its subprocesses, unless the
user set them already:

- kedro-telemetry (comes with kedro-viz): ``KEDRO_DISABLE_TELEMETRY=1``;
- MLflow (3.17+): ``MLFLOW_DISABLE_TELEMETRY=true`` (its client writes
  ``~/.config/mlflow/telemetry.json`` and sends usage events otherwise);
- onnxruntime: ``ORT_DISABLE_TELEMETRY=1`` (otherwise it writes a device id and an event
  database under ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/`` on first use).

``PDM_TELEMETRY=on`` leaves all three libraries at their own defaults.
"""

from __future__ import annotations

import os

SWITCH = "PDM_TELEMETRY"
OFF_SWITCHES = {
    "KEDRO_DISABLE_TELEMETRY": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "ORT_DISABLE_TELEMETRY": "1",
}


def telemetry_allowed() -> bool:
    """Whether the user opted in with ``PDM_TELEMETRY=on`` (or 1 / true / yes)."""
    return os.environ.get(SWITCH, "").strip().lower() in {"on", "1", "true", "yes"}


def disable_library_telemetry() -> dict[str, str]:
    """Set each library's off switch the user did not set; returns what was set."""
    if telemetry_allowed():
        return {}
    added = {k: v for k, v in OFF_SWITCHES.items() if k not in os.environ}
    os.environ.update(added)
    return added
