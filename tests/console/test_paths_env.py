"""Each configuration environment has its own data root and MLflow store."""

import pytest

from pdm_kedro import paths


@pytest.fixture()
def no_overrides(monkeypatch):
    monkeypatch.delenv(paths.DATA_ROOT_ENV, raising=False)
    monkeypatch.delenv(paths.TRACKING_URI_ENV, raising=False)
    yield
    paths.use_session_env(None)


def test_default_envs_use_the_project_data_folder(no_overrides):
    for env in (None, "local", "base"):
        paths.use_session_env(env)
        assert paths.data_root() == paths.project_root() / "data"
        assert paths.mlflow_tracking_uri() == f"sqlite:///{paths.project_root() / 'mlflow.db'}"


def test_other_envs_get_their_own_folder_and_store(no_overrides):
    paths.use_session_env("small")
    small = paths.project_root() / "data" / "small"
    assert paths.data_root() == small
    assert paths.mlflow_tracking_uri() == f"sqlite:///{small / 'mlflow.db'}"
    assert paths.mlflow_artifact_location() == (small / "mlartifacts").as_uri()


def test_the_variables_win(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.DATA_ROOT_ENV, str(tmp_path))
    monkeypatch.setenv(paths.TRACKING_URI_ENV, "sqlite:///x.db")
    paths.use_session_env("small")
    try:
        assert paths.data_root() == tmp_path.resolve()
        assert paths.mlflow_tracking_uri() == "sqlite:///x.db"
    finally:
        paths.use_session_env(None)
