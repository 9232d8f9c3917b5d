"""Small helpers shared by the compatibility tests (raw REST calls and error assertions)."""

from __future__ import annotations

import json
import time
import uuid

import requests

API = "/api/2.0/mlflow"

# 5xx answers seen during the current test (filled by conftest's urllib3 hook and by record_5xx).
FIVE_XX: list[str] = []


def record_5xx(desc: str) -> None:
    """For raw http.client calls, which bypass urllib3."""
    FIVE_XX.append(desc)


def unique(prefix: str = "x") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def now_ms() -> int:
    return int(time.time() * 1000)


def api_get(server, path: str, params=None, **kw) -> requests.Response:
    return requests.get(f"{server.url}{API}/{path}", params=params, timeout=20, **kw)


def api_post(server, path: str, body=None, **kw) -> requests.Response:
    return requests.post(f"{server.url}{API}/{path}", json=body, timeout=30, **kw)


def api_raw(server, method: str, path: str, data=None, headers=None) -> requests.Response:
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return requests.request(method, f"{server.url}{API}/{path}", data=data, headers=h, timeout=20)


def assert_error(resp: requests.Response, status: int | tuple, code: str | tuple | None = None) -> dict:
    """The response is an MLflow error: the given status and a JSON body with error_code + message."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert resp.status_code in statuses, (
        f"expected HTTP {statuses}, got {resp.status_code}: {resp.text[:500]}"
    )
    try:
        body = resp.json()
    except json.JSONDecodeError:
        raise AssertionError(f"error body is not JSON: {resp.text[:500]!r}") from None
    assert isinstance(body, dict) and "error_code" in body and "message" in body, body
    assert isinstance(body["message"], str) and body["message"], body
    if code is not None:
        codes = code if isinstance(code, tuple) else (code,)
        assert body["error_code"] in codes, f"expected error_code {codes}, got {body}"
    return body


def create_run_raw(server, experiment_id: str, name: str | None = None) -> str:
    body = {"experiment_id": experiment_id, "start_time": now_ms(), "user_id": "tester"}
    if name:
        body["run_name"] = name
    r = api_post(server, "runs/create", body)
    assert r.status_code == 200, r.text
    return r.json()["run"]["info"]["run_id"]
