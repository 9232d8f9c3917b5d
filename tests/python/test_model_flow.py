"""The MLflow 3.x model flow: log_model (LoggedModel + artifacts + registration), then load it back
by every URI form a user writes, and get the original model's predictions."""

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest
import requests
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from _helpers import API, unique


@pytest.fixture(scope="module")
def fitted(server):
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    mlflow.set_tracking_uri(server.url)
    mlflow.set_experiment(unique("modelflow"))
    name = unique("iris")
    with mlflow.start_run() as run:
        mlflow.log_param("max_iter", 300)
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name)
    return {"model": model, "X": X, "info": info, "run_id": run.info.run_id, "name": name,
            "expected": model.predict(X)}


def test_log_model_registers_version_1(client, fitted):
    mv = client.get_model_version(fitted["name"], "1")
    assert mv.status == "READY"
    assert mv.source == f"models:/{fitted['info'].model_id}"
    info = fitted["info"]
    assert info.model_id.startswith("m-")
    assert str(info.registered_model_version) == "1"
    # the client sends only model_id; MLflow fills run_id from the logged model's source_run_id
    assert mv.run_id == fitted["run_id"]


def test_logged_model_is_ready_and_linked_to_run(client, fitted, server):
    lm = client.get_logged_model(fitted["info"].model_id)
    assert str(lm.status) in ("READY", "LoggedModelStatus.READY", "LOGGED_MODEL_READY") or lm.status.name == "READY"
    assert lm.source_run_id == fitted["run_id"]
    assert lm.name == "model"
    exp_id = client.get_run(fitted["run_id"]).info.experiment_id
    assert lm.artifact_location == f"mlflow-artifacts:/{exp_id}/models/{lm.model_id}/artifacts"
    # the artifacts really are on disk under <data-dir>/artifacts/<exp>/models/<m-id>/artifacts
    d = server.artifact_root / exp_id / "models" / lm.model_id / "artifacts"
    assert (d / "MLmodel").is_file()
    run = client.get_run(fitted["run_id"])
    assert [o.model_id for o in run.outputs.model_outputs] == [lm.model_id]

    found = client.search_logged_models(experiment_ids=[exp_id], filter_string="name = 'model'")
    assert [m.model_id for m in found] == [lm.model_id]


def test_load_by_version(fitted):
    loaded = mlflow.pyfunc.load_model(f"models:/{fitted['name']}/1")
    np.testing.assert_array_equal(np.asarray(loaded.predict(fitted["X"])), fitted["expected"])


def test_load_by_alias(client, fitted):
    client.set_registered_model_alias(fitted["name"], "champion", "1")
    loaded = mlflow.pyfunc.load_model(f"models:/{fitted['name']}@champion")
    np.testing.assert_array_equal(np.asarray(loaded.predict(fitted["X"])), fitted["expected"])


def test_load_by_model_id_uri(fitted):
    loaded = mlflow.sklearn.load_model(fitted["info"].model_uri)  # models:/m-<id>
    np.testing.assert_array_equal(loaded.predict(fitted["X"]), fitted["expected"])
    np.testing.assert_allclose(loaded.predict_proba(fitted["X"]), fitted["model"].predict_proba(fitted["X"]))


def test_load_by_runs_uri(fitted):
    """3.17.2 resolves runs:/<rid>/model through logged-models/search (name + source_run_id)."""
    loaded = mlflow.sklearn.load_model(f"runs:/{fitted['run_id']}/model")
    np.testing.assert_array_equal(loaded.predict(fitted["X"]), fitted["expected"])


def test_second_log_model_creates_version_2(client, fitted):
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(fitted["model"], name="model", registered_model_name=fitted["name"])
    assert str(info.registered_model_version) == "2"
    rm = client.get_registered_model(fitted["name"])
    assert [str(v.version) for v in rm.latest_versions] == ["2"]
    loaded = mlflow.pyfunc.load_model(f"models:/{fitted['name']}/latest")
    np.testing.assert_array_equal(np.asarray(loaded.predict(fitted["X"])), fitted["expected"])


def test_download_uri_of_version(server, fitted):
    r = requests.get(
        f"{server.url}{API}/model-versions/get-download-uri",
        params={"name": fitted["name"], "version": "1"}, timeout=10,
    )
    assert r.status_code == 200, r.text
    mid = fitted["info"].model_id
    # MLflow resolves the models:/<m-id> source to the logged model's artifact location
    assert r.json()["artifact_uri"] in (f"models:/{mid}", f"mlflow-artifacts:/{exp_id(server, fitted)}/models/{mid}/artifacts")


def exp_id(server, fitted):
    return mlflow.MlflowClient(server.url).get_run(fitted["run_id"]).info.experiment_id
