"""Behaviours where Atelier answers as MLflow's own server does, checked against the pinned
`mlflow` package itself where it holds the rule (issue 14's conformance list):

- `GET /version` names the MLflow release whose protocol Atelier speaks (the client gates span
  logging on it), Atelier's own version in a header;
- artifact downloads carry MLflow's `Content-Disposition`, built here by MLflow's own function;
- `get-history-bulk` returns runs in id order, each run's points by (timestamp, step, value), at
  most `max_results` points in all, with MLflow's error messages.
"""

from __future__ import annotations

import urllib.parse

import mlflow
import pytest
import requests
from mlflow.entities import Metric
from mlflow.server.handlers import _content_disposition_attachment
from mlflow.store.tracking.rest_store import RestStore
from mlflow.utils.rest_utils import MlflowHostCreds
from packaging.version import Version

from _helpers import unique

AJAX = "/ajax-api/2.0/mlflow"


def test_version_is_the_mlflow_protocol_and_the_client_accepts_it(server):
    r = requests.get(f"{server.url}/version", timeout=10)
    assert r.status_code == 200
    assert r.text == mlflow.__version__, "the server speaks the pinned client's protocol"
    assert r.headers["x-atelier-version"].count(".") == 2
    RestStore._get_server_version.cache_clear()
    got = RestStore._get_server_version(MlflowHostCreds(server.url))
    assert got == Version(mlflow.__version__) and got >= Version("3.4")


@pytest.mark.parametrize("name", ["plain.txt", "my report.csv", "naïve résumé.json", "日本語"])
def test_artifact_downloads_name_the_file_as_mlflow_does(server, tmp_path, name):
    c = mlflow.MlflowClient(server.url)
    run = c.create_run(c.create_experiment(unique("cd")))
    f = tmp_path / name
    f.write_text("x")
    c.log_artifact(run.info.run_id, str(f))
    root = run.info.artifact_uri.split(":", 1)[1].lstrip("/")
    url = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{root}/{urllib.parse.quote(name)}"
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and r.content == b"x"
    assert r.headers["Content-Disposition"] == _content_disposition_attachment(name)


@pytest.fixture(scope="module")
def three_runs(server):
    c = mlflow.MlflowClient(server.url)
    exp = c.create_experiment(unique("bulk"))
    ids = [c.create_run(exp).info.run_id for _ in range(3)]
    for n, rid in enumerate(ids):
        # logged out of order: a later timestamp first, two points sharing a timestamp
        c.log_batch(rid, metrics=[
            Metric("loss", 3.0 + n, 3000, 0),
            Metric("loss", 2.0 + n, 1000, 5),
            Metric("loss", 1.0 + n, 1000, 2),
        ])
    return ids


def bulk(server, run_ids, **params):
    q = [("run_id", r) for r in run_ids] + list(params.items())
    return requests.get(f"{server.url}{AJAX}/metrics/get-history-bulk", params=q, timeout=30)


def test_history_bulk_orders_runs_by_id_and_points_by_time(server, three_runs):
    r = bulk(server, list(reversed(three_runs)), metric_key="loss")
    assert r.status_code == 200, r.text
    got = [(m["run_id"], m["timestamp"], m["step"]) for m in r.json()["metrics"]]
    want = [(rid, ts, step) for rid in sorted(three_runs) for ts, step in [(1000, 2), (1000, 5), (3000, 0)]]
    assert got == want
    # max_results counts points over all runs, not per run
    r = bulk(server, three_runs, metric_key="loss", max_results=4)
    assert [(m["run_id"], m["step"]) for m in r.json()["metrics"]] == want_pairs(want[:4])
    # a larger max_results is clamped, as MLflow does, not refused
    assert bulk(server, three_runs, metric_key="loss", max_results=10**6).status_code == 200


def want_pairs(rows):
    return [(rid, step) for rid, _, step in rows]


def test_history_bulk_errors_read_as_mlflow_s(server, three_runs):
    r = bulk(server, [], metric_key="loss")
    assert r.status_code == 400
    assert r.json()["message"] == "GetMetricHistoryBulk request must specify at least one run_id."
    r = bulk(server, three_runs)
    assert r.json()["message"] == "GetMetricHistoryBulk request must specify a metric_key."
    r = bulk(server, [f"r{i}" for i in range(101)], metric_key="loss")
    assert r.json()["message"] == (
        "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received 101 run_ids."
    )


def test_logged_model_keeps_its_metrics_and_is_gone_once_deleted(server):
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(server.url)
    c = mlflow.MlflowClient(server.url)
    exp = c.create_experiment(unique("lm"))
    with mlflow.start_run(experiment_id=exp) as run:
        m = mlflow.initialize_logged_model(name="clf", experiment_id=exp)
        mlflow.log_metric("acc", 0.9, step=1, model_id=m.model_id)
        mlflow.log_metric("acc", 0.95, step=2, model_id=m.model_id)
        mlflow.log_metric("unrelated", 1.0)  # the run's, not the model's
    got = mlflow.get_logged_model(m.model_id)
    assert sorted((x.key, x.value, x.step, x.run_id) for x in got.metrics) == [
        ("acc", 0.9, 1, run.info.run_id),
        ("acc", 0.95, 2, run.info.run_id),
    ]
    assert all(x.model_id == m.model_id for x in got.metrics)
    c.delete_logged_model(m.model_id)
    with pytest.raises(MlflowException) as e:
        mlflow.get_logged_model(m.model_id)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert f"Logged model with ID '{m.model_id}' not found." in str(e.value)
    assert m.model_id not in [x.model_id for x in mlflow.search_logged_models(experiment_ids=[exp], output_format="list")]


def test_a_version_made_from_a_logged_model_is_listed_on_the_model(server):
    import json

    c = mlflow.MlflowClient(server.url)
    exp = c.create_experiment(unique("mv"))
    run = c.create_run(exp)
    m = c.create_logged_model(experiment_id=exp, source_run_id=run.info.run_id, name="clf")
    name = unique("réseau")  # non-ASCII: written as Python's json.dumps writes it
    c.create_registered_model(name)
    v1 = c.create_model_version(name, source=m.artifact_location, run_id=run.info.run_id, model_id=m.model_id)
    v2 = c.create_model_version(name, source=m.artifact_location, run_id=run.info.run_id, model_id=m.model_id)
    tag = c.get_logged_model(m.model_id).tags["mlflow.modelVersions"]
    want = [{"name": name, "version": int(v1.version)}, {"name": name, "version": int(v2.version)}]
    assert tag == json.dumps(want)


def test_a_version_may_name_a_run_this_server_does_not_have_when_its_source_is_elsewhere(server):
    from mlflow.exceptions import MlflowException

    c = mlflow.MlflowClient(server.url)
    name = unique("elsewhere")
    c.create_registered_model(name)
    ghost = "f" * 32
    # outside storage, or the run's own runs:/ URI: registered, as MLflow's server does
    v = c.create_model_version(name, source="s3://bucket/models/clf", run_id=ghost)
    assert (v.source, v.run_id) == ("s3://bucket/models/clf", ghost)
    v = c.create_model_version(name, source=f"runs:/{ghost}/model", run_id=ghost)
    assert v.run_id == ghost
    # a source inside the missing run's artifacts cannot be checked: refused with MLflow's words
    with pytest.raises(MlflowException) as e:
        c.create_model_version(name, source=f"mlflow-artifacts:/0/{ghost}/artifacts/model", run_id=ghost)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "The run_id request parameter must identify the resource that contains the source." in str(e.value)


def test_a_relative_artifact_location_is_made_absolute_against_the_server_s_directory(server):
    c = mlflow.MlflowClient(server.url)
    root = server.data_dir.resolve()  # the test server runs in its data folder
    e = c.get_experiment(c.create_experiment(unique("rel"), artifact_location="runs/here"))
    assert e.artifact_location == f"{root}/runs/here"
    e = c.get_experiment(c.create_experiment(unique("relf"), artifact_location="file:runs/there"))
    assert e.artifact_location == f"file://{root}/runs/there"
    for kept in ["s3://bucket/x", "/abs/path", "file:///abs/path", "mlflow-artifacts:/x"]:
        assert c.get_experiment(c.create_experiment(unique("kept"), artifact_location=kept)).artifact_location == kept
