"""Installed size of the project in fresh virtual environments: the xgboost build it pulls in.

Builds two throwaway venvs (never the running environment): one with the project as it is, one
with the project's dependencies forced to the other xgboost build (``--variant``), installs the
project with ``pip install <project>`` into each and records ``du`` of the venv and of its
``site-packages/nvidia`` folder (CUDA libraries). Prints the figures and saves them as JSON::

    python benchmarks/install_size.py --out benchmarks/install_size.json

Downloads about 2 GB from the package index and takes minutes: not run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
MARKER_CPU = "xgboost-cpu>=3.2,<4; platform_system == 'Linux' and platform_machine == 'x86_64'"
MARKER_GPU = "xgboost>=3.2,<4; platform_system != 'Linux' or platform_machine != 'x86_64'"


def du_mb(path: Path) -> int:
    """Disk usage of ``path`` in MB (``du -sm``), 0 when it does not exist."""
    if not path.exists():
        return 0
    out = subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def project_copy(dest: Path, plain_xgboost: bool) -> Path:
    """The project's files (git-tracked), with the xgboost dependency as the variant asks."""
    files = subprocess.run(
        ["git", "ls-files"], cwd=PROJECT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (PROJECT / name).is_file():
            shutil.copy2(PROJECT / name, target)
    if plain_xgboost:
        text = (dest / "pyproject.toml").read_text()
        text = text.replace(f'"{MARKER_CPU}",', '"xgboost>=3.2,<4",').replace(
            f'"{MARKER_GPU}",', ""
        )
        (dest / "pyproject.toml").write_text(text)
    return dest


def measure(work: Path, plain_xgboost: bool) -> dict:
    """Install the project into a fresh venv under ``work``; its size figures."""
    source = project_copy(work / "project", plain_xgboost)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(source)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    freeze = subprocess.run(
        [str(venv / "bin" / "pip"), "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    versions = {p["name"].lower(): p["version"] for p in json.loads(freeze)}
    return {
        "xgboost_dependency": "xgboost" if plain_xgboost else "xgboost-cpu (Linux x86-64 marker)",
        "venv_mb": du_mb(venv),
        "nvidia_mb": du_mb(site / "nvidia"),
        "xgboost": versions.get("xgboost") or versions.get("xgboost-cpu"),
        "nvidia_nccl_cu12": versions.get("nvidia-nccl-cu12"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    results = {
        "platform": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
    }
    for key, plain in (("before_xgboost", True), ("after_xgboost_cpu", False)):
        with tempfile.TemporaryDirectory(prefix="pdm_install_") as work:
            results[key] = measure(Path(work), plain)
            print(key, json.dumps(results[key]))
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
