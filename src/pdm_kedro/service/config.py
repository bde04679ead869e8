"""The service's settings, read from ``conf/<env>/service.yml`` through Kedro's config loader.

``pdm-kedro serve`` and every uvicorn worker read the same configuration: the conf source and
environment travel to the workers in ``PDM_SERVICE_CONF_SOURCE`` / ``PDM_SERVICE_ENV``. API keys
come from Kedro credentials (``pdm_service_api_keys`` in ``conf/local/credentials.yml``) and the
``PDM_API_KEYS`` environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pdm_kedro.paths import data_root, project_root

CONF_SOURCE_ENV = "PDM_SERVICE_CONF_SOURCE"
ENV_ENV = "PDM_SERVICE_ENV"
CREDENTIALS_KEY = "pdm_service_api_keys"
CONFIG_KEY = "service"


class Limits(BaseModel):
    """Request size limits (413 beyond them)."""

    model_config = ConfigDict(extra="forbid")
    max_body_bytes: int = Field(4_000_000, gt=0)
    max_rows: int = Field(5000, gt=0)
    max_batch_items: int = Field(200, gt=0)


class RateLimits(BaseModel):
    """Per-key request budgets by scope, in the ``limits`` library's notation (``100/minute``)."""

    model_config = ConfigDict(extra="forbid")
    predict: str = "100000/minute"
    admin: str = "120/minute"

    @field_validator("predict", "admin")
    @classmethod
    def _parses(cls, value: str) -> str:
        from limits import parse  # noqa: PLC0415

        parse(value)  # raises ValueError on a malformed limit
        return value


class Explanations(BaseModel):
    """``?explain=N`` on the predict endpoints (docs/explanations.md)."""

    model_config = ConfigDict(extra="forbid")
    rate_limit_cost: int = Field(
        5, ge=1, description="predict-budget hits one explained request costs (1 = a plain one)"
    )


class Training(BaseModel):
    """The training job queue."""

    model_config = ConfigDict(extra="forbid")
    max_queue: int = Field(4, gt=0)
    timeout_seconds: float = Field(3600, gt=0)
    log_tail_lines: int = Field(30, gt=0)


class Metrics(BaseModel):
    """The Prometheus endpoint."""

    model_config = ConfigDict(extra="forbid")
    require_key: bool = False


class ServiceConfig(BaseModel):
    """Everything ``service.yml`` configures, plus where it was read from."""

    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    models_dir: Path | None = None
    reload_poll_seconds: float = Field(2.0, gt=0)
    limits: Limits = Limits()
    rate_limits: RateLimits = RateLimits()
    explanations: Explanations = Explanations()
    training: Training = Training()
    metrics: Metrics = Metrics()
    # not in service.yml: where the configuration came from (training jobs reuse it)
    conf_source: Path | None = None
    env: str | None = None

    @property
    def models_root(self) -> Path:
        """The folder holding ``<machine>/edge/manifest.json`` bundles."""
        return Path(self.models_dir) if self.models_dir else data_root() / "06_models"

    @property
    def state_dir(self) -> Path:
        """Where the service keeps its job records and logs (beside the data layers)."""
        return data_root() / "09_service"


def default_conf_source() -> Path:
    """``<project>/conf``."""
    return project_root() / "conf"


def _loader(conf_source: Path, env: str | None) -> Any:
    from kedro.config import OmegaConfigLoader  # noqa: PLC0415

    from pdm_kedro import settings  # noqa: PLC0415

    args = dict(settings.CONFIG_LOADER_ARGS)
    args["config_patterns"] = {CONFIG_KEY: ["service*", "service*/**"]}
    args["merge_strategy"] = {**args.get("merge_strategy", {}), CONFIG_KEY: "soft"}
    return OmegaConfigLoader(conf_source=str(conf_source), env=env, **args)


def load_config(conf_source: str | Path | None = None, env: str | None = None) -> ServiceConfig:
    """The service configuration of ``conf_source`` (default ``<project>/conf``) and ``env``."""
    conf_source = Path(conf_source or os.environ.get(CONF_SOURCE_ENV) or default_conf_source())
    env = env or os.environ.get(ENV_ENV) or None
    from kedro.config import MissingConfigException  # noqa: PLC0415

    loader = _loader(conf_source, env)
    try:
        raw = loader[CONFIG_KEY]
    except (KeyError, MissingConfigException):
        raw = {}
    block = dict(raw.get(CONFIG_KEY, {}) or {})
    return ServiceConfig(**block, conf_source=conf_source.resolve(), env=env)


def load_credential_keys(config: ServiceConfig) -> Any:
    """The ``pdm_service_api_keys`` entry of Kedro credentials (``None`` when absent)."""
    from kedro.config import MissingConfigException  # noqa: PLC0415

    loader = _loader(config.conf_source or default_conf_source(), config.env)
    try:
        credentials = loader["credentials"]
    except (KeyError, MissingConfigException):  # no credentials file in any environment
        return None
    return (credentials or {}).get(CREDENTIALS_KEY)
