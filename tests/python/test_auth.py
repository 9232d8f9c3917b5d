"""Token authentication: `atelier token create` + `atelier serve --require-auth` (enforced even on
loopback). The real client authenticates with MLFLOW_TRACKING_TOKEN (sent as `Authorization: Bearer`)."""

import re

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException

from _helpers import API, unique
from conftest import REFERENCE, run_cli, start_server

pytestmark = pytest.mark.skipif(REFERENCE, reason="Atelier-only: real MLflow has no --require-auth tokens")

ART = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("authdata")
    res = run_cli(["token", "create", "ci-bot", "--data-dir", str(data_dir)])
    assert res.returncode == 0, f"`atelier token create` failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    lines = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]
    assert lines, f"`atelier token create` printed no token on stdout; stderr:\n{res.stderr}"
    token = lines[-1].split()[-1]
    assert re.fullmatch(r"[A-Za-z0-9._~+/=-]{16,}", token), f"does not look like a token: {token!r}"
    srv = start_server(data_dir, ["--require-auth"], ready_statuses=(200, 401))
    yield srv, token
    srv.stop()


@pytest.fixture
def anon(auth_server, monkeypatch):
    srv, _ = auth_server
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    mlflow.set_tracking_uri(srv.url)
    return srv


@pytest.fixture
def authed(auth_server, monkeypatch):
    srv, token = auth_server
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    mlflow.set_tracking_uri(srv.url)
    return srv, token


def _assert_401(r):
    assert r.status_code == 401, f"expected 401, got {r.status_code}: {r.text[:300]}"
    if r.headers.get("content-type", "").startswith("application/json"):
        body = r.json()
        assert body.get("error_code") in (None, "UNAUTHENTICATED"), body


def test_token_is_not_stored_in_clear(auth_server):
    srv, token = auth_server
    for p in srv.data_dir.rglob("*"):
        if p.is_file() and p.stat().st_size < 50_000_000:
            assert token.encode() not in p.read_bytes(), f"token stored in clear in {p}"


def test_no_token_is_401(anon):
    srv = anon
    _assert_401(requests.get(f"{srv.url}{API}/experiments/search", params={"max_results": 10}, timeout=10))
    _assert_401(requests.post(f"{srv.url}{API}/experiments/create", json={"name": unique("x")}, timeout=10))
    _assert_401(requests.get(f"{srv.url}{API}/experiments/get-by-name", params={"experiment_name": "Default"}, timeout=10))
    _assert_401(requests.get(f"{srv.url}{ART}", params={"path": "0"}, timeout=10))
    _assert_401(requests.put(f"{srv.url}{ART}/0/x/artifacts/f.txt", data=b"x", timeout=10))
    _assert_401(requests.get(f"{srv.url}/ajax-api/2.0/mlflow/experiments/search", params={"max_results": 10}, timeout=10))


@pytest.mark.parametrize(
    "header",
    ["Bearer wrong-token-0123456789abcdef", "Bearer ", "Basic dXNlcjpwYXNz", "wrong-token-without-scheme"],
)
def test_wrong_token_is_401(auth_server, header):
    srv, _ = auth_server
    r = requests.get(f"{srv.url}{API}/experiments/search", params={"max_results": 10},
                     headers={"Authorization": header}, timeout=10)
    _assert_401(r)


def test_token_in_other_case_or_truncated_is_401(auth_server):
    srv, token = auth_server
    for bad in [token[:-1], token + "x", token.swapcase() if token.swapcase() != token else token[::-1]]:
        r = requests.get(f"{srv.url}{API}/experiments/search", params={"max_results": 10},
                         headers={"Authorization": f"Bearer {bad}"}, timeout=10)
        _assert_401(r)


def test_raw_request_with_token_works(auth_server):
    srv, token = auth_server
    r = requests.get(f"{srv.url}{API}/experiments/search", params={"max_results": 10},
                     headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.text


def test_client_without_token_fails(anon):
    with pytest.raises(MlflowException) as ei:
        mlflow.MlflowClient(anon.url).search_experiments()
    assert ei.value.get_http_status_code() in (401, 403) or "401" in str(ei.value)


def test_real_client_with_token(authed, tmp_path):
    srv, _ = authed
    exp = mlflow.set_experiment(unique("authed"))
    with mlflow.start_run(run_name="with-token") as run:
        mlflow.log_param("p", "1")
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_text("secured", "out/result.txt")
    runs = mlflow.search_runs(experiment_ids=[exp.experiment_id], filter_string="params.p = '1'")
    assert list(runs["run_id"]) == [run.info.run_id]
    assert list(runs["metrics.loss"]) == [1.0 / 3]
    c = mlflow.MlflowClient(srv.url)
    assert [m.step for m in c.get_metric_history(run.info.run_id, "loss")] == [0, 1, 2]
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/out/result.txt") == "secured"
    assert c.get_run(run.info.run_id).info.status == "FINISHED"


def test_server_without_require_auth_allows_anonymous_loopback(fresh_server):
    r = requests.get(f"{fresh_server.url}{API}/experiments/search", params={"max_results": 10}, timeout=10)
    assert r.status_code == 200


def test_token_created_and_revoked_while_serving(auth_server):
    srv, _ = auth_server
    res = run_cli(["token", "create", "temp-bot", "--data-dir", str(srv.data_dir)])
    assert res.returncode == 0, res.stderr
    temp = res.stdout.strip().splitlines()[-1].split()[-1]
    url = f"{srv.url}{API}/experiments/search"
    r = requests.get(url, params={"max_results": 1}, headers={"Authorization": f"Bearer {temp}"}, timeout=10)
    assert r.status_code == 200, r.text
    res = run_cli(["token", "revoke", "temp-bot", "--data-dir", str(srv.data_dir)])
    assert res.returncode == 0, res.stderr
    r = requests.get(url, params={"max_results": 1}, headers={"Authorization": f"Bearer {temp}"}, timeout=10)
    _assert_401(r)
