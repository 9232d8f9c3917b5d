"""The OpenAPI document: generated from the route table, valid OpenAPI 3.1, and complete.

`GET /api/atelier/openapi.json` is built from the same declarations the request guard enforces
(`GET /api/atelier/routes` lists them); a client generator can take it as it is.
"""

from __future__ import annotations

import re

import pytest
import requests
from openapi_spec_validator import validate

from conftest import REFERENCE

pytestmark = pytest.mark.skipif(REFERENCE, reason="Atelier's own API")


def _openapi_path(path: str) -> str:
    # axum's trailing wildcard `{*rest}` is OpenAPI's `{rest}`
    return re.sub(r"\{\*([^}]+)\}", r"{\1}", path)


@pytest.fixture(scope="module")
def doc(server):
    r = requests.get(f"{server.url}/api/atelier/openapi.json", timeout=20)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


@pytest.fixture(scope="module")
def routes(server):
    r = requests.get(f"{server.url}/api/atelier/routes", timeout=20)
    assert r.status_code == 200, r.text
    return r.json()["routes"]


def test_the_document_is_valid_openapi_3_1(doc, server):
    assert doc["openapi"] == "3.1.0"
    version = requests.get(f"{server.url}/version", timeout=10).headers["x-atelier-version"]
    assert doc["info"]["version"] == version
    validate(doc)  # raises with the first violation


def test_every_route_is_in_the_document_and_nothing_else(doc, routes):
    declared = {(r["method"].lower(), _openapi_path(r["path"])) for r in routes}
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert len(routes) > 100
    assert declared - documented == set(), "routes missing from the document"
    assert documented - declared == set(), "operations the server does not have"
    # the areas a user generates clients for are all there
    tags = {t["name"] for t in doc["tags"]}
    for area in ["jobs", "datasets", "automl", "endpoints", "monitoring-schedules", "notebooks", "mlflow"]:
        assert area in tags, f"no '{area}' operations: {sorted(tags)}"


def test_operations_have_unique_ids_params_and_access(doc, routes):
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)), "duplicate operationIds"
    by_route = {(r["method"].lower(), _openapi_path(r["path"])): r for r in routes}
    for path, ops in doc["paths"].items():
        names = re.findall(r"\{([^}]+)\}", path)
        for method, op in ops.items():
            params = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
            assert params == names, f"{method} {path}: path parameters {params} != {names}"
            access = by_route[(method, path)]["access"]
            assert op["x-atelier-access"] == access
            # public routes need no token; the rest take the bearer token
            assert ("security" in op and op["security"] == []) == (access == "public"), f"{method} {path}"
            assert "4XX" in op["responses"]


def test_a_client_can_find_and_call_an_operation_by_its_id(doc, server):
    ops = {op["operationId"]: (path, method) for path, o in doc["paths"].items() for method, op in o.items()}
    assert "list_datasets" in ops, sorted(ops)[:40]
    path, method = ops["list_datasets"]
    r = requests.request(method.upper(), f"{server.url}{path}", timeout=20)
    assert r.status_code == 200, r.text
    assert "datasets" in r.json()
