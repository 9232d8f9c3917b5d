"""Metric histories: full history through the client, down-sampled bulk-interval for charts."""

import mlflow
import pytest
import requests
from mlflow.entities import Metric

from _helpers import API, assert_error, now_ms, unique

T0 = 1_700_000_000_000


@pytest.fixture(scope="module")
def long_runs(server):
    c = mlflow.MlflowClient(server.url)
    exp = c.create_experiment(unique("hist"))
    big = c.create_run(exp).info.run_id
    small = c.create_run(exp).info.run_id
    # log_batch: the client splits into requests of 1000 metrics
    c.log_batch(big, metrics=[Metric("loss", 1.0 / (s + 1), T0 + s, s) for s in range(3000)])
    c.log_batch(small, metrics=[Metric("loss", float(s), T0 + s, s) for s in range(0, 1000, 2)])  # 500 points
    return c, big, small


def bulk(server, run_ids, key, **params):
    q = [("run_ids", r) for r in run_ids] + [("metric_key", key)] + list(params.items())
    return requests.get(f"{server.url}{API}/metrics/get-history-bulk-interval", params=q, timeout=30)


def test_full_history_3000_points_in_step_order(long_runs):
    c, big, _ = long_runs
    hist = c.get_metric_history(big, "loss")
    assert len(hist) == 3000
    assert [m.step for m in hist] == list(range(3000))
    assert all(m.timestamp == T0 + m.step for m in hist)
    # exact float round trip is test_runs.py::test_metric_values_round_trip_exactly
    assert [m.value for m in hist] == pytest.approx([1.0 / (s + 1) for s in range(3000)], rel=1e-15)
    assert c.get_run(big).data.metrics["loss"] == pytest.approx(1.0 / 3000, rel=1e-15)


def test_history_keeps_duplicate_steps(client, experiment_id):
    run = client.create_run(experiment_id)
    rid = run.info.run_id
    client.log_metric(rid, "m", 1.0, timestamp=T0, step=0)
    client.log_metric(rid, "m", 2.0, timestamp=T0 + 1, step=0)
    client.log_metric(rid, "m", 3.0, timestamp=T0 + 2, step=1)
    hist = client.get_metric_history(rid, "m")
    assert [(m.step, m.value) for m in hist] == [(0, 1.0), (0, 2.0), (1, 3.0)]


def test_history_of_unknown_key_is_empty(long_runs):
    c, big, _ = long_runs
    assert list(c.get_metric_history(big, "nosuch")) == []


def test_bulk_interval_downsamples_and_keeps_ends(server, long_runs):
    _, big, small = long_runs
    r = bulk(server, [big, small], "loss", max_results=100)
    assert r.status_code == 200, r.text
    pts = r.json()["metrics"]
    by_run = {}
    for p in pts:
        assert p["key"] == "loss"
        by_run.setdefault(p["run_id"], []).append(p)
    assert set(by_run) == {big, small}
    for rid, last in [(big, 2999), (small, 998)]:
        steps = [p["step"] for p in by_run[rid]]
        assert 2 <= len(steps) <= 100, f"{len(steps)} points for max_results=100"
        assert steps == sorted(steps)
        assert steps[0] == 0 and steps[-1] == last
        assert len(set(steps)) == len(steps)
    # values are the logged ones
    for p in by_run[big]:
        assert p["value"] == pytest.approx(1.0 / (p["step"] + 1), rel=1e-15)
        assert p["timestamp"] == T0 + p["step"]
    # the sample spreads over the range instead of clustering at the start
    steps = [p["step"] for p in by_run[big]]
    assert any(1000 < s < 2000 for s in steps) and any(2000 < s < 2999 for s in steps)


def test_bulk_interval_step_range(server, long_runs):
    _, big, small = long_runs
    r = bulk(server, [big, small], "loss", start_step=1000, end_step=1500, max_results=50)
    assert r.status_code == 200, r.text
    pts = r.json().get("metrics", [])
    big_steps = [p["step"] for p in pts if p["run_id"] == big]
    small_steps = [p["step"] for p in pts if p["run_id"] == small]
    assert 2 <= len(big_steps) <= 50
    assert all(1000 <= s <= 1500 for s in big_steps + small_steps)
    assert big_steps[0] == 1000 and big_steps[-1] == 1500
    assert small_steps == []  # its steps stop at 998


def test_bulk_interval_small_history_returned_whole(server, long_runs):
    _, _, small = long_runs
    r = bulk(server, [small], "loss", max_results=2500)
    assert r.status_code == 200, r.text
    assert [p["step"] for p in r.json()["metrics"]] == list(range(0, 1000, 2))


def test_bulk_interval_default_max_results(server, long_runs):
    _, big, _ = long_runs
    r = bulk(server, [big], "loss")
    assert r.status_code == 200, r.text
    assert len(r.json()["metrics"]) == 2500


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"max_results": 0}, id="max_results-0"),
        pytest.param({"max_results": 2501}, id="max_results-2501"),
        pytest.param({"max_results": "abc"}, id="max_results-abc"),
        pytest.param({"start_step": 10}, id="start-without-end"),
        pytest.param({"start_step": 10, "end_step": 5}, id="start-after-end"),
    ],
)
def test_bulk_interval_bad_arguments_are_400(server, long_runs, params):
    _, big, _ = long_runs
    assert_error(bulk(server, [big], "loss", **params), 400, "INVALID_PARAMETER_VALUE")


def test_bulk_interval_too_many_runs_is_400(server, long_runs):
    _, big, _ = long_runs
    assert_error(bulk(server, [big] * 101, "loss"), 400, "INVALID_PARAMETER_VALUE")


def test_get_history_paging_raw(server, long_runs):
    _, big, _ = long_runs
    got, token = [], None
    for _ in range(10):
        params = {"run_id": big, "metric_key": "loss", "max_results": 1200}
        if token:
            params["page_token"] = token
        r = requests.get(f"{server.url}{API}/metrics/get-history", params=params, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["metrics"]) <= 1200
        got.extend(m["step"] for m in body["metrics"])
        token = body.get("next_page_token")
        if not token:
            break
    assert got == list(range(3000))
