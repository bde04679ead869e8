"""``pdm-kedro serve``: the prediction and training service (FastAPI on uvicorn).

Settings come from ``conf/<env>/service.yml`` (host, port, workers, limits); ``--host``,
``--port`` and ``--workers`` override them. API keys: ``PDM_API_KEYS`` or Kedro credentials.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import click

from pdm_kedro.service.config import CONF_SOURCE_ENV, ENV_ENV, load_config, load_credential_keys


@click.command(name="serve")
@click.option("--host", default=None, help="interface to bind (service.yml: 127.0.0.1)")
@click.option("--port", type=int, default=None, help="TCP port (service.yml: 8000)")
@click.option("--workers", type=int, default=None, help="uvicorn worker processes")
@click.option("--env", "-e", "env", default=None, help="Kedro config environment")
@click.option(
    "--conf-source",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="config folder (default: the project's conf/)",
)
@click.option("--log-level", default="warning", show_default=True)
def command(
    host: str | None,
    port: int | None,
    workers: int | None,
    env: str | None,
    conf_source: Path | None,
    log_level: str,
) -> None:
    """Serve every machine's production models over HTTP (docs/serving.md)."""
    import uvicorn  # noqa: PLC0415

    from pdm_kedro.service.auth import KeyConfigError, load_keys  # noqa: PLC0415

    config = load_config(conf_source, env)
    try:
        keys = load_keys(load_credential_keys(config))
    except KeyConfigError as err:
        raise click.ClickException(str(err)) from None
    if not len(keys):
        raise click.ClickException(
            "No API keys configured: set PDM_API_KEYS ('key:scope' pairs, comma separated, "
            "scopes predict and admin) or pdm_service_api_keys in conf/local/credentials.yml."
        )
    host = host or config.host
    port = config.port if port is None else port
    workers = workers or config.workers
    os.environ[CONF_SOURCE_ENV] = str(config.conf_source)
    if env:
        os.environ[ENV_ENV] = env
    if workers > 1:  # every worker writes its metrics here; /metrics adds them up
        folder = Path(tempfile.gettempdir()) / f"pdm_service_metrics_{port}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    click.echo(
        f"pdm_kedro service on http://{host}:{port} ({workers} worker(s), "
        f"models from {config.models_root}, {len(keys)} API key(s)); docs at /docs",
        err=True,
    )
    uvicorn.run(
        "pdm_kedro.service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
        # a worker imports the project and loads and warms every bundle before it answers the
        # supervisor's health check: on a busy host that takes far longer than uvicorn's 5 s
        timeout_worker_healthcheck=300,
    )
