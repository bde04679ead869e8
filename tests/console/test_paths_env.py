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


def test_a_tracking_server_keeps_its_own_artifact_location(monkeypatch):
    """With a tracking server, a new experiment gets the server's default artifact location
    (proxied or its --default-artifact-root), not a folder of this host; mlflow.yml reads
    the same through the project's config loader."""
    from pdm_kedro import settings

    monkeypatch.setenv(paths.TRACKING_URI_ENV, "http://127.0.0.1:5000")
    assert paths.mlflow_artifact_location() is None
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(paths.project_root() / "conf"), **settings.CONFIG_LOADER_ARGS
    )
    loader.config_patterns["mlflow"] = ["mlflow*", "mlflow*/**", "**/mlflow*"]
    experiment = loader["mlflow"]["tracking"]["experiment"]
    assert experiment["create_experiment_kwargs"]["artifact_location"] is None
    monkeypatch.setenv(paths.TRACKING_URI_ENV, "sqlite:////tmp/x/mlflow.db")
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(paths.project_root() / "conf"), **settings.CONFIG_LOADER_ARGS
    )
    loader.config_patterns["mlflow"] = ["mlflow*", "mlflow*/**", "**/mlflow*"]
    assert (
        loader["mlflow"]["tracking"]["experiment"]["create_experiment_kwargs"]["artifact_location"]
        == "file:///tmp/x/mlartifacts"
    )
