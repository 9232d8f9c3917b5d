"""Runs, params, metrics, tags and dataset inputs through the real mlflow client."""

import math
import re
import sys

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from _helpers import api_get, api_post, assert_error, now_ms

MAX_DOUBLE = sys.float_info.max


def test_start_and_end_run_with_name(client, experiment_id):
    with mlflow.start_run(run_name="first-run") as run:
        run_id = run.info.run_id
        assert re.fullmatch(r"[0-9a-f]{32}", run_id)
        assert run.info.run_name == "first-run"
        assert run.info.status == "RUNNING"
        assert run.info.experiment_id == experiment_id
        assert run.info.artifact_uri == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"
        assert run.info.lifecycle_stage == "active"
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "first-run"
    assert got.data.tags["mlflow.runName"] == "first-run"
    assert "mlflow.user" in got.data.tags and "mlflow.source.name" in got.data.tags
    assert got.info.start_time > 1_600_000_000_000
    assert got.info.end_time is not None and got.info.end_time >= got.info.start_time


def test_end_run_with_status(client, experiment_id):
    mlflow.start_run()
    run_id = mlflow.active_run().info.run_id
    mlflow.end_run(status="KILLED")
    assert client.get_run(run_id).info.status == "KILLED"


def test_run_without_name_gets_a_generated_one(client, experiment_id):
    with mlflow.start_run() as run:
        pass
    got = client.get_run(run.info.run_id)
    assert got.info.run_name  # the client generates e.g. "bold-owl-123"
    assert got.data.tags["mlflow.runName"] == got.info.run_name


def test_update_status_and_name(client, experiment_id):
    run = client.create_run(experiment_id, run_name="before")
    client.update_run(run.info.run_id, status="FAILED", name="after")
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FAILED"
    assert got.info.run_name == "after"
    assert got.data.tags["mlflow.runName"] == "after"
    client.set_terminated(run.info.run_id, status="FINISHED", end_time=got.info.start_time + 5000)
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.end_time == got.info.start_time + 5000


def test_get_run_accepts_run_uuid_only(client, experiment_id, server):
    run = client.create_run(experiment_id)
    r = api_get(server, "runs/get", {"run_uuid": run.info.run_id})
    assert r.status_code == 200, r.text
    info = r.json()["run"]["info"]
    assert info["run_id"] == run.info.run_id
    assert info["experiment_id"] == experiment_id  # ids are strings on the wire
    assert isinstance(info["start_time"], int)


def test_delete_and_restore_run(client, experiment_id):
    run = client.create_run(experiment_id)
    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    client.restore_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"


def test_log_param_same_value_ok_different_value_rejected(client, experiment_id, server):
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_param("lr", 0.1)  # same value again: fine
        with pytest.raises(MlflowException) as ei:
            mlflow.log_param("lr", 0.2)
        assert ei.value.error_code == "INVALID_PARAMETER_VALUE"
        r = api_post(server, "runs/log-parameter", {"run_id": run.info.run_id, "key": "lr", "value": "0.3"})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert client.get_run(run.info.run_id).data.params == {"lr": "0.1"}


def test_log_metric_with_steps_and_timestamps(client, experiment_id):
    t0 = now_ms() - 100_000
    with mlflow.start_run() as run:
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=t0 + step * 1000)
    hist = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in hist] == [
        (s, 1.0 / (s + 1), t0 + s * 1000) for s in range(5)
    ]
    assert all(m.key == "loss" for m in hist)
    assert client.get_run(run.info.run_id).data.metrics == {"loss": 0.2}


def test_log_metric_default_step_is_zero(client, experiment_id):
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 3.5)
    (m,) = client.get_metric_history(run.info.run_id, "m")
    assert m.step == 0 and m.value == 3.5 and m.timestamp > 1_600_000_000_000


def test_log_batch_via_fluent_api(client, experiment_id):
    with mlflow.start_run() as run:
        mlflow.log_params({"a": 1, "b": "two", "c": 3.5})
        mlflow.log_metrics({"x": 1.5, "y": -2.0}, step=3)
        mlflow.set_tags({"team": "ml", "stage": "dev"})
    data = client.get_run(run.info.run_id).data
    assert data.params == {"a": "1", "b": "two", "c": "3.5"}
    assert data.metrics == {"x": 1.5, "y": -2.0}
    assert data.tags["team"] == "ml" and data.tags["stage"] == "dev"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "x")] == [3]


def test_client_log_batch_mixed(client, experiment_id):
    run = client.create_run(experiment_id)
    ts = now_ms()
    client.log_batch(
        run.info.run_id,
        metrics=[Metric("m", float(i), ts + i, i) for i in range(10)],
        params=[Param("p1", "v1"), Param("p2", "v2")],
        tags=[RunTag("t1", "x")],
    )
    got = client.get_run(run.info.run_id)
    assert got.data.metrics["m"] == 9.0
    assert got.data.params == {"p1": "v1", "p2": "v2"}
    assert got.data.tags["t1"] == "x"
    assert len(client.get_metric_history(run.info.run_id, "m")) == 10


def test_set_tag_upsert_and_delete_tag(client, experiment_id):
    with mlflow.start_run() as run:
        mlflow.set_tag("k", "v1")
        mlflow.set_tag("k", "v2")
        mlflow.set_tag("other", "o")
    rid = run.info.run_id
    assert client.get_run(rid).data.tags["k"] == "v2"
    client.delete_tag(rid, "k")
    tags = client.get_run(rid).data.tags
    assert "k" not in tags and tags["other"] == "o"
    with pytest.raises(MlflowException) as ei:
        client.delete_tag(rid, "never-set")
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def _is_pos_inf(v):
    # MLflow's SQL store clamps inf to the largest double; a faithful round trip is better.
    return v == math.inf or v == MAX_DOUBLE


def _is_neg_inf(v):
    return v == -math.inf or v == -MAX_DOUBLE


def test_nan_and_infinite_metric_values_round_trip(client, experiment_id):
    with mlflow.start_run() as run:
        mlflow.log_metric("nan", float("nan"), step=0)
        mlflow.log_metric("pinf", float("inf"), step=0)
        mlflow.log_metric("ninf", float("-inf"), step=0)
        mlflow.log_metric("mixed", 1.0, step=0)
        mlflow.log_metric("mixed", float("nan"), step=1)
        mlflow.log_metric("mixed", 2.0, step=2)
    rid = run.info.run_id
    metrics = client.get_run(rid).data.metrics
    assert math.isnan(metrics["nan"])
    assert _is_pos_inf(metrics["pinf"])
    assert _is_neg_inf(metrics["ninf"])
    assert metrics["mixed"] == 2.0
    (h,) = client.get_metric_history(rid, "nan")
    assert math.isnan(h.value)
    (h,) = client.get_metric_history(rid, "pinf")
    assert _is_pos_inf(h.value)
    (h,) = client.get_metric_history(rid, "ninf")
    assert _is_neg_inf(h.value)
    vals = [m.value for m in client.get_metric_history(rid, "mixed")]
    assert vals[0] == 1.0 and math.isnan(vals[1]) and vals[2] == 2.0


def test_metric_values_round_trip_exactly(client, experiment_id):
    """Every double comes back bit-for-bit (JSON parsing must be correctly rounded)."""
    values = [1.0 / 607, 1.0 / 3, 0.1, 123456789.12345679, 2.0 ** -1074, 1e-300, 6.02214076e23,
              -0.0016474464579901153, 0.30000000000000004, 1.7976931348623157e308]
    run = client.create_run(experiment_id)
    client.log_batch(run.info.run_id, metrics=[Metric("v", x, now_ms(), i) for i, x in enumerate(values)])
    got = [m.value for m in client.get_metric_history(run.info.run_id, "v")]
    assert [x.hex() for x in got] == [x.hex() for x in values]


def test_nan_on_the_wire_is_a_string(client, experiment_id, server):
    run = client.create_run(experiment_id)
    r = api_post(server, "runs/log-metric", {
        "run_id": run.info.run_id, "key": "w", "value": "NaN", "timestamp": now_ms(), "step": 0})
    assert r.status_code == 200, r.text
    r = api_get(server, "runs/get", {"run_id": run.info.run_id})
    (m,) = r.json()["run"]["data"]["metrics"]
    assert m["value"] == "NaN"


def test_latest_metric_is_the_highest_step(client, experiment_id):
    t = now_ms()
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.5, step=5, timestamp=t)
        mlflow.log_metric("acc", 0.2, step=2, timestamp=t + 10_000)  # older step, newer timestamp
        mlflow.log_metric("acc", 0.1, step=1, timestamp=t + 20_000)
    assert client.get_run(run.info.run_id).data.metrics["acc"] == 0.5


def test_log_input_dataset_appears_in_run_inputs(client, experiment_id):
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    ds = mlflow.data.from_pandas(df, name="train-set", targets="y")
    with mlflow.start_run() as run:
        mlflow.log_input(ds, context="training", tags={"version": "v1"})
    got = client.get_run(run.info.run_id)
    assert len(got.inputs.dataset_inputs) == 1
    di = got.inputs.dataset_inputs[0]
    assert di.dataset.name == "train-set"
    assert di.dataset.digest == ds.digest
    assert di.dataset.source_type == ds.source._get_source_type()
    assert di.dataset.schema and "x" in di.dataset.schema
    tags = {t.key: t.value for t in di.tags}
    assert tags["mlflow.data.context"] == "training"
    assert tags["version"] == "v1"
    # reconstructing the dataset from the run works (the client parses source/profile JSON)
    assert mlflow.data.get_source(di).to_dict() == ds.source.to_dict()


def test_run_in_unknown_experiment_is_404(client):
    with pytest.raises(MlflowException) as ei:
        client.create_run("987654321")
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_logging_to_deleted_run_is_rejected(client, experiment_id):
    run = client.create_run(experiment_id)
    client.delete_run(run.info.run_id)
    with pytest.raises(MlflowException) as ei:
        client.log_param(run.info.run_id, "p", "v")
    assert ei.value.get_http_status_code() < 500
