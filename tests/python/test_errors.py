"""Error paths: status codes and `{"error_code", "message"}` bodies; bad input is 4xx, never 5xx."""

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException

from _helpers import API, api_get, api_post, api_raw, assert_error, create_run_raw, now_ms

UNKNOWN_RUN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def run_id(server, experiment_id):
    return create_run_raw(server, experiment_id)


def test_unknown_run_is_404_resource_does_not_exist(server, client):
    assert_error(api_get(server, "runs/get", {"run_id": UNKNOWN_RUN}), 404, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(MlflowException) as ei:
        client.get_run(UNKNOWN_RUN)
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert ei.value.get_http_status_code() == 404
    r = api_post(server, "runs/log-metric", {"run_id": UNKNOWN_RUN, "key": "k", "value": 1.0, "timestamp": now_ms()})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = api_post(server, "runs/update", {"run_id": UNKNOWN_RUN, "status": "FINISHED"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_unknown_experiment_is_404(server, client):
    assert_error(api_get(server, "experiments/get", {"experiment_id": "424242"}), 404, "RESOURCE_DOES_NOT_EXIST")
    r = api_post(server, "runs/create", {"experiment_id": "424242", "start_time": now_ms()})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = api_post(server, "experiments/delete", {"experiment_id": "424242"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_metric_history_of_unknown_run_is_404_or_empty(server):
    # MLflow answers 200 {} here (it does not look the run up); 404 is also acceptable.
    r = api_get(server, "metrics/get-history", {"run_id": UNKNOWN_RUN, "metric_key": "m"})
    if r.status_code == 200:
        assert r.json().get("metrics", []) == []
    else:
        assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.mlflow_deviates("MLflow answers 500 for log-batch and 200 for runs/search")
def test_malformed_json_body_is_400(server):
    for path in ["experiments/create", "runs/log-batch", "runs/search"]:
        r = api_raw(server, "POST", path, data=b'{"name": "x", ')
        assert_error(r, 400)
    r = api_raw(server, "POST", "experiments/create", data=b"[1, 2, 3]")
    assert_error(r, 400)


@pytest.mark.parametrize(
    "path,body",
    [
        pytest.param("runs/search", {"max_results": "abc"}, id="max_results-abc"),
        pytest.param("runs/search", {"max_results": 50001}, id="max_results-50001"),
        pytest.param("runs/search", {"experiment_ids": "0"}, id="experiment_ids-not-list"),
        pytest.param("experiments/search", {"max_results": "abc"}, id="exp-max_results-abc"),
        pytest.param("experiments/create", {"name": 123}, id="name-int"),
        pytest.param("experiments/create", {"name": ""}, id="name-empty"),
    ],
)
def test_wrong_types_are_400(server, path, body):
    assert_error(api_post(server, path, body), 400, ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"))


def test_metric_value_not_a_number_is_400(server, client, run_id):
    r = api_post(server, "runs/log-metric", {"run_id": run_id, "key": "m", "value": "notanumber", "timestamp": now_ms()})
    assert_error(r, 400, ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"))
    r = api_post(server, "runs/log-metric", {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": "yesterday"})
    assert_error(r, 400, ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"))
    assert client.get_run(run_id).data.metrics == {}


@pytest.mark.mlflow_deviates("MLflow answers 200 {} and drops the batch silently")
def test_log_batch_metric_value_not_a_number_is_400(server, client, run_id):
    r = api_post(server, "runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": "x", "timestamp": 1, "step": 0}]})
    assert_error(r, 400, ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"))
    assert client.get_run(run_id).data.metrics == {}


@pytest.mark.parametrize(
    "path,body",
    [
        pytest.param("experiments/create", {}, id="create-exp-no-name"),
        pytest.param("runs/log-metric", {"value": 1.0, "timestamp": 1}, id="log-metric-no-key"),
        pytest.param("runs/log-metric", {"key": "m", "timestamp": 1}, id="log-metric-no-value"),
        pytest.param("runs/log-metric", {"key": "m", "value": 1.0}, id="log-metric-no-timestamp"),
        pytest.param("runs/set-tag", {"value": "v"}, id="set-tag-no-key"),
        pytest.param("experiments/set-experiment-tag", {"key": "k", "value": "v"}, id="exp-tag-no-id"),
    ],
)
def test_missing_required_fields_are_400(server, run_id, path, body):
    if path.startswith("runs/"):
        body = {"run_id": run_id, **body}
    assert_error(api_post(server, path, body), 400, ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"))


def test_missing_run_id_is_4xx(server):
    r = api_post(server, "runs/log-metric", {"key": "m", "value": 1.0, "timestamp": 1})
    assert_error(r, (400, 404))


def test_invalid_key_names_are_400(server, run_id):
    for key in ["bad key!", "../escape", "/abs"]:
        r = api_post(server, "runs/log-parameter", {"run_id": run_id, "key": key, "value": "v"})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_oversized_param_value_is_truncated_or_rejected(server, client, run_id):
    """MLflow 3.x truncates param values to 6000 chars (200); older servers answer 400. Never 5xx."""
    value = "v" * 10000
    r = api_post(server, "runs/log-parameter", {"run_id": run_id, "key": "big", "value": value})
    params = client.get_run(run_id).data.params
    if r.status_code == 200:
        assert params["big"] == value[:6000]
    else:
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
        assert "big" not in params


def test_oversized_tag_value_is_truncated_or_rejected(server, client, run_id):
    value = "t" * 9000
    r = api_post(server, "runs/set-tag", {"run_id": run_id, "key": "bigtag", "value": value})
    tags = client.get_run(run_id).data.tags
    if r.status_code == 200:
        assert tags["bigtag"] == value[:8000]
    else:
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
        assert "bigtag" not in tags


def test_oversized_key_is_400(server, run_id):
    r = api_post(server, "runs/log-parameter", {"run_id": run_id, "key": "k" * 251, "value": "v"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_invalid_run_status_is_400_or_ignored(server, client, run_id):
    # MLflow ignores an unknown enum name (200, status unchanged); rejecting it with 400 is fine too.
    r = api_post(server, "runs/update", {"run_id": run_id, "status": "EXPLODED"})
    if r.status_code == 200:
        assert client.get_run(run_id).info.status == "RUNNING"
    else:
        assert_error(r, 400, ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"))


def test_unknown_route_is_404_not_5xx(server):
    r = requests.get(f"{server.url}{API}/no/such/endpoint", timeout=10)
    assert r.status_code == 404
    r = requests.post(f"{server.url}{API}/runs/explode", json={}, timeout=10)
    assert r.status_code in (404, 405)


def test_version_and_health(server):
    r = requests.get(f"{server.url}/health", timeout=5)
    assert r.status_code == 200 and r.text.strip() == "OK"
    r = requests.get(f"{server.url}/version", timeout=5)
    assert r.status_code == 200 and r.text.strip()


def test_client_surfaces_error_message(client, experiment_id):
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "p", "1")
    with pytest.raises(MlflowException) as ei:
        client.log_param(run.info.run_id, "p", "2")
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "p" in ei.value.message


def test_deleted_experiment_cannot_get_new_runs(client):
    exp_id = client.create_experiment(f"gone-{now_ms()}")
    client.delete_experiment(exp_id)
    with pytest.raises(MlflowException) as ei:
        client.create_run(exp_id)
    assert 400 <= ei.value.get_http_status_code() < 500
    mlflow.set_tracking_uri(client.tracking_uri)
