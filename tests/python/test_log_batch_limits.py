"""runs/log-batch limits (MLflow's validation.py), via raw REST: the client splits batches itself."""

import pytest

from _helpers import api_post, assert_error, create_run_raw, now_ms


@pytest.fixture
def run_id(server, experiment_id):
    return create_run_raw(server, experiment_id)


def _metrics(n, key="m"):
    ts = now_ms()
    return [{"key": key, "value": float(i), "timestamp": ts, "step": i} for i in range(n)]


def _params(n):
    return [{"key": f"p{i}", "value": str(i)} for i in range(n)]


def _tags(n):
    return [{"key": f"t{i}", "value": str(i)} for i in range(n)]


def _assert_nothing_logged(client, run_id):
    data = client.get_run(run_id).data
    assert data.metrics == {} and data.params == {}
    assert not any(k.startswith("t") and k[1:].isdigit() for k in data.tags)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"metrics": _metrics(1001)}, id="1001-metrics"),
        pytest.param({"params": _params(101)}, id="101-params"),
        pytest.param({"tags": _tags(101)}, id="101-tags"),
        pytest.param({"metrics": _metrics(900), "params": _params(100), "tags": _tags(1)}, id="1001-total"),
        pytest.param({"metrics": _metrics(1000), "params": _params(100), "tags": _tags(100)}, id="1200-total"),
    ],
)
def test_over_limit_batches_are_rejected_atomically(server, client, run_id, body):
    r = api_post(server, "runs/log-batch", {"run_id": run_id, **body})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    _assert_nothing_logged(client, run_id)


def test_exactly_1000_metrics_accepted(server, client, run_id):
    r = api_post(server, "runs/log-batch", {"run_id": run_id, "metrics": _metrics(1000)})
    assert r.status_code == 200, r.text
    hist = client.get_metric_history(run_id, "m")
    assert len(hist) == 1000
    assert client.get_run(run_id).data.metrics["m"] == 999.0


def test_limits_at_the_edge_accepted(server, client, run_id):
    body = {"run_id": run_id, "metrics": _metrics(800), "params": _params(100), "tags": _tags(100)}
    r = api_post(server, "runs/log-batch", body)
    assert r.status_code == 200, r.text
    data = client.get_run(run_id).data
    assert len(data.params) == 100
    assert sum(1 for k in data.tags if k.startswith("t") and k[1:].isdigit()) == 100


def test_batch_with_conflicting_param_is_rejected(server, client, run_id):
    assert api_post(server, "runs/log-batch", {"run_id": run_id, "params": [{"key": "a", "value": "1"}]}).status_code == 200
    r = api_post(server, "runs/log-batch", {"run_id": run_id, "params": [{"key": "a", "value": "2"}]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert client.get_run(run_id).data.params == {"a": "1"}


def test_empty_batch_is_ok(server, run_id):
    r = api_post(server, "runs/log-batch", {"run_id": run_id})
    assert r.status_code == 200, r.text
    assert r.json() == {}


def test_batch_to_unknown_run_is_404(server):
    r = api_post(server, "runs/log-batch", {"run_id": "0" * 32, "params": _params(1)})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_the_clients_shape_and_mlflows_other_spellings_log_the_same(server, client, experiment_id):
    """A body as the client sends it (numbers as numbers) is read straight into typed fields; one
    with MLflow's other spellings (numbers as strings, "NaN", a query-string run id) goes through
    the general reader. Both must store the same points and refuse the same mistakes alike."""
    ts = now_ms()
    plain = {"metrics": [{"key": "m", "value": 1.5, "timestamp": ts, "step": 3},
                         {"key": "n", "value": 2, "timestamp": ts}],
             "params": [{"key": "p", "value": "v"}], "tags": [{"key": "t", "value": "w"}]}
    spelled = {"metrics": [{"key": "m", "value": "1.5", "timestamp": str(ts), "step": "3"},
                           {"key": "n", "value": 2.0, "timestamp": ts, "step": None}],
               "params": [{"key": "p", "value": "v"}], "tags": [{"key": "t", "value": "w"}]}
    got = []
    for body in (plain, spelled):
        rid = create_run_raw(server, experiment_id)
        r = api_post(server, "runs/log-batch", {"run_id": rid, **body})
        assert r.status_code == 200, r.text
        run = client.get_run(rid)
        hist = [(m.key, m.value, m.timestamp, m.step) for k in ("m", "n") for m in client.get_metric_history(rid, k)]
        got.append((run.data.metrics, run.data.params, {k: v for k, v in run.data.tags.items() if k == "t"}, hist))
    assert got[0] == got[1]
    assert got[0][0] == {"m": 1.5, "n": 2.0}
    # the same mistake gets the same answer whichever reader sees it
    rid = create_run_raw(server, experiment_id)
    bad_plain = {"run_id": rid, "metrics": [{"key": "../up", "value": 1.0, "timestamp": ts}]}
    bad_spelled = {"run_id": rid, "metrics": [{"key": "../up", "value": "1.0", "timestamp": str(ts)}]}
    a = assert_error(api_post(server, "runs/log-batch", bad_plain), 400, "INVALID_PARAMETER_VALUE")
    b = assert_error(api_post(server, "runs/log-batch", bad_spelled), 400, "INVALID_PARAMETER_VALUE")
    assert a["message"] == b["message"]
    _assert_nothing_logged(client, rid)
    # no run id: the general reader's message
    assert_error(api_post(server, "runs/log-batch", {"metrics": []}), 400, "INVALID_PARAMETER_VALUE")
