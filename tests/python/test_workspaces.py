"""Projects are MLflow workspaces: the real mlflow client (3.10+) selects one with
mlflow.set_workspace, manages them with MlflowClient().create_workspace & co., and sees only the
experiments and runs of the workspace it names (another workspace's answer 404, as missing ones).

Each test runs the client in this process; set_workspace also sets MLFLOW_WORKSPACE in os.environ,
so every test clears it at the end (the fixture below)."""

import os

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from _helpers import api_get, api_post, assert_error, unique


@pytest.fixture(autouse=True)
def _no_workspace_afterwards():
    yield
    mlflow.set_workspace(None)
    os.environ.pop("MLFLOW_WORKSPACE", None)


def ws_name() -> str:
    return unique("ws").lower()


def two_projects(server):
    """Two new projects (workspaces), made by the server's admin."""
    admin = MlflowClient(server.url)
    names = ws_name(), ws_name()
    for w in names:
        admin.create_workspace(w)
    return names


def test_server_info_says_workspaces_are_enabled(server):
    r = requests.get(f"{server.url}/api/3.0/mlflow/server-info", timeout=10,
                     headers={"X-MLFLOW-WORKSPACE": "no-such-ws"})
    assert r.status_code == 200, r.text  # the header is not looked at here
    assert r.json()["workspaces_enabled"] is True


def test_workspaces_are_created_listed_read_updated_and_deleted(server):
    c = MlflowClient(server.url)
    names = [w.name for w in c.list_workspaces()]
    assert "default" in names
    assert c.get_workspace("default").name == "default"

    name = ws_name()
    w = c.create_workspace(name, description="team a")
    assert (w.name, w.description) == (name, "team a")
    assert name in [x.name for x in c.list_workspaces()]
    assert c.get_workspace(name).description == "team a"

    with pytest.raises(MlflowException) as e:
        c.create_workspace(name)
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"

    w = c.update_workspace(name, description="team a, renamed", default_artifact_root="s3://bucket/a")
    assert (w.description, w.default_artifact_root) == ("team a, renamed", "s3://bucket/a")

    c.delete_workspace(name)
    with pytest.raises(MlflowException) as e:
        c.get_workspace(name)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_workspace_rules_match_mlflows(server):
    # refused by the server (the client checks names too: these go as raw calls)
    base = f"{server.url}/api/3.0/mlflow/workspaces"
    for bad in ["A", "Team-A", "-ab", "ab-", "api", "x" * 64]:
        assert_error(requests.post(base, json={"name": bad}, timeout=10), 400, "INVALID_PARAMETER_VALUE")
    assert_error(requests.post(base, json={"name": "default"}, timeout=10), 400, "INVALID_PARAMETER_VALUE")
    assert_error(requests.delete(f"{base}/default", timeout=10), 400, "INVALID_PARAMETER_VALUE")
    assert_error(requests.get(f"{base}/nope-{unique('x').lower()}", timeout=10), 404, "RESOURCE_DOES_NOT_EXIST")
    name = ws_name()
    assert requests.post(base, json={"name": name}, timeout=10).status_code == 201
    assert_error(requests.patch(f"{base}/{name}", json={}, timeout=10), 400, "INVALID_PARAMETER_VALUE")
    assert_error(requests.patch(f"{base}/{name}", json={"default_artifact_root": "relative/dir"}, timeout=10),
                 400, "INVALID_PARAMETER_VALUE")
    assert_error(requests.delete(f"{base}/{name}?mode=BOGUS", timeout=10), 400, "INVALID_PARAMETER_VALUE")
    assert requests.delete(f"{base}/{name}", timeout=10).status_code == 204


def test_an_unknown_or_malformed_workspace_header_is_refused_before_anything_runs(server):
    r = api_post(server, "experiments/search", {"max_results": 10},
                 headers={"X-MLFLOW-WORKSPACE": "nope-" + unique("x").lower()})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = api_post(server, "experiments/create", {"name": unique("e")}, headers={"X-MLFLOW-WORKSPACE": "Bad_Name"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    mlflow.set_workspace("nope-" + unique("x").lower())
    with pytest.raises(MlflowException) as e:
        MlflowClient(server.url).search_experiments()
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_the_client_works_inside_a_workspace_and_sees_only_its_own(server):
    alpha, beta = two_projects(server)

    made = {}
    for w in (alpha, beta):
        mlflow.set_workspace(w)  # every tracking call now carries X-MLFLOW-WORKSPACE
        exp_id = mlflow.set_experiment("shared-name").experiment_id  # the same name in each
        with mlflow.start_run() as run:
            mlflow.log_param("ws", w)
            mlflow.log_metric("m", 1.0)
        made[w] = (exp_id, run.info.run_id)
    assert made[alpha][0] != made[beta][0], "experiment ids stay global"

    mlflow.set_workspace(alpha)
    c = MlflowClient(server.url)
    assert [e.name for e in c.search_experiments()] == ["shared-name"]
    exp = c.get_experiment(made[alpha][0])
    assert exp.workspace == alpha
    assert c.get_run(made[alpha][1]).data.params == {"ws": alpha}
    assert [r.info.run_id for r in c.search_runs([made[alpha][0]])] == [made[alpha][1]]
    assert c.get_metric_history(made[alpha][1], "m")[0].value == 1.0

    # beta's experiment and run are not there for alpha: 404, as if they did not exist
    for call in (lambda: c.get_run(made[beta][1]),
                 lambda: c.get_experiment(made[beta][0]),
                 lambda: c.log_param(made[beta][1], "x", "1"),
                 lambda: c.set_tag(made[beta][1], "x", "1"),
                 lambda: c.log_batch(made[beta][1], params=[mlflow.entities.Param("y", "2")]),
                 lambda: c.get_metric_history(made[beta][1], "m"),
                 lambda: c.delete_run(made[beta][1]),
                 lambda: c.rename_experiment(made[beta][0], "taken-over"),
                 lambda: c.delete_experiment(made[beta][0]),
                 lambda: c.create_run(made[beta][0])):
        with pytest.raises(MlflowException) as e:
            call()
        assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST", e.value
    # searching beta's experiment from alpha finds nothing
    assert c.search_runs([made[beta][0]]) == []
    # the default experiment (id 0) lives in the default workspace only
    with pytest.raises(MlflowException) as e:
        c.create_run("0")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    # nothing of beta changed through alpha
    mlflow.set_workspace(beta)
    b = MlflowClient(server.url)
    run = b.get_run(made[beta][1])
    assert run.data.params == {"ws": beta}
    assert run.info.lifecycle_stage == "active"
    assert b.get_experiment(made[beta][0]).name == "shared-name"

    # the default workspace (no header) sees neither
    mlflow.set_workspace(None)
    d = MlflowClient(server.url)
    assert d.get_experiment_by_name("shared-name") is None
    with pytest.raises(MlflowException):
        d.get_run(made[alpha][1])


def test_a_workspace_with_experiments_is_kept_unless_they_move_to_default(server):
    admin = MlflowClient(server.url)
    w = ws_name()
    admin.create_workspace(w)
    mlflow.set_workspace(w)
    name = unique("moving")
    exp_id = mlflow.set_experiment(name).experiment_id
    mlflow.set_workspace(None)
    base = f"{server.url}/api/3.0/mlflow/workspaces/{w}"
    # RESTRICT (the default): refused with a reason, and nothing moved
    body = assert_error(requests.delete(base, timeout=10), 400, "INVALID_STATE")
    assert "1 experiment" in body["message"], body
    assert admin.get_workspace(w).name == w
    # SET_DEFAULT: the experiment lands in the default workspace
    admin.delete_workspace(w, mode="SET_DEFAULT")
    assert admin.get_experiment(exp_id).workspace == "default"
    assert admin.get_experiment_by_name(name).experiment_id == exp_id


def test_a_deleted_projects_name_brings_nothing_of_it_to_a_new_project(server):
    """Deleting counts everything a project holds, SET_DEFAULT moves all of it (files too) to
    the default project, and a new project of the same name starts empty: its name is retired
    until the old project's folder is empty."""
    admin = MlflowClient(server.url)
    w = ws_name()
    admin.create_workspace(w)
    h = {"X-MLFLOW-WORKSPACE": w}
    model = unique("kept-model")
    mlflow.set_workspace(w)
    MlflowClient(server.url).create_registered_model(model)
    mlflow.set_workspace(None)
    csv = b"x,y\n1,a\n2,b\n"
    r = requests.put(f"{server.url}/api/atelier/datasets/left.csv", data=csv, headers=h, timeout=10)
    assert r.status_code in (200, 201), r.text
    raw = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/projects/{w}/datasets/left.csv"
    assert requests.get(raw, timeout=10).status_code == 404, "not the default project's yet"

    base = f"{server.url}/api/3.0/mlflow/workspaces/{w}"
    body = assert_error(requests.delete(base, timeout=10), 400, "INVALID_STATE")
    assert "1 registered model(s)" in body["message"], body
    admin.delete_workspace(w, mode="SET_DEFAULT")
    assert admin.get_registered_model(model).name == model
    assert requests.get(raw, timeout=10).content == csv, "its files passed to the default project"

    # the name is retired while the old folder holds files
    r = requests.post(f"{server.url}/api/3.0/mlflow/workspaces", json={"name": w}, timeout=10)
    body = assert_error(r, 400, "INVALID_STATE")
    assert "retired" in body["message"] and f"projects/{w}/" in body["message"], body
    assert requests.delete(raw, timeout=10).status_code in (200, 204)
    admin.create_workspace(w)
    mlflow.set_workspace(w)
    assert MlflowClient(server.url).search_registered_models() == []
    r = requests.get(f"{server.url}/api/atelier/datasets", headers=h, timeout=10)
    assert r.status_code == 200 and r.json()["datasets"] == [], r.text
    assert requests.get(raw, headers=h, timeout=10).status_code == 404


def test_experiments_without_a_workspace_behave_as_before(server):
    # no header: the default workspace, the experiment JSON names it
    r = api_get(server, "experiments/get", {"experiment_id": "0"})
    assert r.status_code == 200, r.text
    assert r.json()["experiment"]["workspace"] == "default"
    name = unique("plain")
    r = api_post(server, "experiments/create", {"name": name})
    assert r.status_code == 200, r.text
    assert api_get(server, "experiments/get-by-name", {"experiment_name": name}).status_code == 200


@mlflow.trace(name="answer")
def _answer(q):
    return q + 1


def test_traces_logged_models_and_scorers_belong_to_their_experiments_workspace(server):
    alpha, beta = two_projects(server)

    mlflow.set_tracking_uri(server.url)
    mlflow.set_workspace(alpha)
    a = MlflowClient(server.url)
    exp = mlflow.set_experiment(unique("traced")).experiment_id
    _answer(1)
    mlflow.flush_trace_async_logging()
    traces = mlflow.search_traces(locations=[exp], return_type="list")
    assert len(traces) == 1
    trace_id = traces[0].info.trace_id
    model = a.create_logged_model(exp, name="m")
    a.set_logged_model_tags(model.model_id, {"k": "v"})
    with mlflow.start_run(experiment_id=exp) as run:
        pass
    # (the UI endpoints the client does not wrap, with the header it would send)
    h = {"X-MLFLOW-WORKSPACE": alpha}
    assert requests.get(f"{server.url}/api/3.0/mlflow/traces/{trace_id}", headers=h, timeout=10).status_code == 200

    # from beta, every one of them is missing
    mlflow.set_workspace(beta)
    b = MlflowClient(server.url)
    for call in (lambda: b.get_trace(trace_id),
                 lambda: b.set_trace_tag(trace_id, "x", "1"),
                 lambda: b.delete_trace_tag(trace_id, "mlflow.traceName"),
                 lambda: b.get_logged_model(model.model_id),
                 lambda: b.set_logged_model_tags(model.model_id, {"x": "1"}),
                 lambda: b.delete_logged_model(model.model_id),
                 lambda: b.finalize_logged_model(model.model_id, "READY"),
                 lambda: b.create_logged_model(exp, name="intruder"),
                 lambda: b.delete_traces(exp, trace_ids=[trace_id])):
        with pytest.raises(MlflowException) as e:
            call()
        # (the client rewords a missing model's 404 on set_logged_model_tags)
        assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST" or "may not have access" in str(e.value), e.value
    assert mlflow.search_traces(locations=[exp], return_type="list") == []
    assert b.search_logged_models(experiment_ids=[exp]) == []
    hb = {"X-MLFLOW-WORKSPACE": beta}
    r = requests.get(f"{server.url}/api/3.0/mlflow/traces/{trace_id}", headers=hb, timeout=10)
    assert r.status_code == 404, r.text
    r = requests.post(f"{server.url}/api/3.0/mlflow/traces/batchGetInfos", headers=hb,
                      json={"trace_ids": [trace_id]}, timeout=10)
    assert (r.status_code, r.json().get("trace_infos", [])) == (200, []), r.text
    r = requests.post(f"{server.url}/api/3.0/mlflow/logged-models/search", headers=hb, json={}, timeout=10)
    assert [m["info"]["model_id"] for m in r.json().get("models", [])] == [], r.text
    r = requests.post(f"{server.url}/api/2.0/mlflow/traces/link-to-run", headers=hb,
                      json={"trace_ids": [trace_id], "run_id": run.info.run_id}, timeout=10)
    assert r.status_code == 404, r.text
    # spans sent to alpha's experiment from beta are refused
    span = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "x", "startTimeUnixNano": "1"}]}]}]}
    r = requests.post(f"{server.url}/v1/traces", json=span, timeout=10,
                      headers={**hb, "x-mlflow-experiment-id": exp})
    assert r.status_code == 404, r.text

    # nor may beta's experiment take alpha's trace over, by spans or by trace info
    other = requests.post(f"{server.url}/api/2.0/mlflow/experiments/create", headers=hb,
                          json={"name": unique("b-exp")}, timeout=10).json()["experiment_id"]
    hex_id = trace_id.removeprefix("tr-")
    span = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": hex_id, "spanId": "ef" * 8, "name": "x", "startTimeUnixNano": "1"}]}]}]}
    r = requests.post(f"{server.url}/v1/traces", json=span, timeout=10,
                      headers={**hb, "x-mlflow-experiment-id": other})
    assert r.status_code == 404 and "belongs to experiment" not in r.text, r.text
    info = requests.get(f"{server.url}/api/3.0/mlflow/traces/{trace_id}", headers=h, timeout=10).json()
    ti = info["trace"]["trace_info"]
    ti["trace_location"] = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": other}}
    r = requests.post(f"{server.url}/api/3.0/mlflow/traces", headers=hb, json={"trace": {"trace_info": ti}}, timeout=10)
    assert r.status_code == 404, r.text
    # beta's runs may not log against alpha's logged model
    brun = requests.post(f"{server.url}/api/2.0/mlflow/runs/create", headers=hb,
                         json={"experiment_id": other}, timeout=10).json()["run"]["info"]["run_id"]
    for path, body in [
        ("runs/log-metric", {"run_id": brun, "key": "m", "value": 1, "timestamp": 1, "model_id": model.model_id}),
        ("runs/log-batch", {"run_id": brun, "metrics": [{"key": "m", "value": 1, "timestamp": 1,
                                                          "model_id": model.model_id}]}),
        ("runs/outputs", {"run_id": brun, "models": [{"model_id": model.model_id, "step": 0}]}),
    ]:
        r = requests.post(f"{server.url}/api/2.0/mlflow/{path}", headers=hb, json=body, timeout=10)
        assert r.status_code == 404, (path, r.text)
    # the datasets of alpha's runs are not listed for beta
    r = requests.post(f"{server.url}/ajax-api/2.0/mlflow/experiments/search-datasets", headers=hb,
                      json={"experiment_ids": [exp]}, timeout=10)
    assert r.status_code == 200 and r.json().get("dataset_summaries", []) == [], r.text

    # alpha's are untouched
    mlflow.set_workspace(alpha)
    a = MlflowClient(server.url)
    assert a.get_logged_model(model.model_id).tags == {"k": "v"}
    assert requests.get(f"{server.url}/api/3.0/mlflow/traces/{trace_id}", headers=h,
                        timeout=10).json()["trace"]["trace_info"]["trace_location"]["mlflow_experiment"]["experiment_id"] == exp
    assert _ids_of(mlflow.search_traces(locations=[exp], return_type="list")) == [trace_id]


def _ids_of(traces):
    return [t.info.trace_id for t in traces]


def test_a_projects_artifacts_are_not_readable_from_another(server, tmp_path):
    alpha, beta = two_projects(server)
    mlflow.set_tracking_uri(server.url)
    mlflow.set_workspace(alpha)
    exp = mlflow.set_experiment(unique("arts")).experiment_id
    f = tmp_path / "secret.txt"
    f.write_text("alpha only")
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_artifact(str(f))
    rid = run.info.run_id
    raw = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{exp}/{rid}/artifacts/secret.txt"
    r = requests.get(raw, headers={"X-MLFLOW-WORKSPACE": alpha}, timeout=10)
    assert (r.status_code, r.text) == (200, "alpha only")

    hb = {"X-MLFLOW-WORKSPACE": beta}
    for method, url, kw in [
        ("GET", raw, {}),
        ("PUT", raw, {"data": b"overwritten"}),
        ("DELETE", raw, {}),
        ("GET", f"{server.url}/api/2.0/mlflow-artifacts/artifacts?path={exp}/{rid}", {}),
        ("GET", f"{server.url}/api/2.0/mlflow/artifacts/list?run_id={rid}", {}),
        ("GET", f"{server.url}/get-artifact?run_id={rid}&path=secret.txt", {}),
        ("POST", f"{server.url}/ajax-api/2.0/mlflow/upload-artifact?run_uuid={rid}&path=x.txt", {"data": b"x"}),
    ]:
        r = requests.request(method, url, headers=hb, timeout=10, **kw)
        assert r.status_code == 404, (method, url, r.status_code, r.text)
    mlflow.set_workspace(beta)
    with pytest.raises(MlflowException):
        MlflowClient(server.url).list_artifacts(rid)
    # a model version of beta may not point at alpha's run or artifacts (they would be served as its own)
    b = MlflowClient(server.url)
    m = unique("b-model")
    b.create_registered_model(m)
    for src in (f"runs:/{rid}/model", f"mlflow-artifacts:/{exp}/{rid}/artifacts"):
        with pytest.raises(MlflowException) as e:
            b.create_model_version(m, src, run_id=None)
        assert "does not have" in str(e.value), e.value
    # the lists of every project's folders are a server admin's (open mode's local user is one;
    # a project's member is not: see test_people)
    r = requests.get(f"{server.url}/api/2.0/mlflow-artifacts/artifacts?path=projects", headers=hb, timeout=10)
    assert r.status_code == 200, r.text

    mlflow.set_workspace(alpha)
    r = requests.get(raw, headers={"X-MLFLOW-WORKSPACE": alpha}, timeout=10)
    assert (r.status_code, r.text) == (200, "alpha only")


def test_a_projects_experiments_keep_their_artifacts_in_the_project(server, tmp_path):
    admin = MlflowClient(server.url)
    alpha = ws_name()
    admin.create_workspace(alpha)
    mlflow.set_tracking_uri(server.url)
    # as MLflow with workspaces: no caller-chosen location, which could be another project's
    mlflow.set_workspace(alpha)
    with pytest.raises(MlflowException) as e:
        MlflowClient(server.url).create_experiment(unique("loc"), artifact_location="mlflow-artifacts:/capture")
    # (MLflow's own words, which its client tests match)
    assert "artifact_location cannot be specified when workspaces are enabled" in str(e.value), e.value
    exp = MlflowClient(server.url).create_experiment(unique("loc"))
    f = tmp_path / "a.txt"
    f.write_text("alpha's")
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_artifact(str(f))
    raw = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{exp}/{run.info.run_id}/artifacts/a.txt"
    # a link or an image cannot send the header: a GET may name the project as ?workspace=
    r = requests.get(f"{raw}?workspace={alpha}", timeout=10)
    assert (r.status_code, r.text) == (200, "alpha's")
    assert requests.get(raw, timeout=10).status_code == 404
    # (only to read: a change names its project in the header)
    r = requests.put(f"{raw}?workspace={alpha}", data=b"x", timeout=10)
    assert r.status_code == 404, r.text
    assert requests.get(raw, headers={"X-MLFLOW-WORKSPACE": alpha}, timeout=10).text == "alpha's"
    # the default project keeps MLflow's behaviour ...
    mlflow.set_workspace(None)
    loc = MlflowClient(server.url).create_experiment(unique("loc"), artifact_location="mlflow-artifacts:/elsewhere")
    assert MlflowClient(server.url).get_experiment(loc).artifact_location == "mlflow-artifacts:/elsewhere"
    # ... within its own part of the store: not another project's folder or experiment
    for other in (f"mlflow-artifacts:/projects/{alpha}/x", f"mlflow-artifacts:/{exp}"):
        with pytest.raises(MlflowException) as e:
            MlflowClient(server.url).create_experiment(unique("loc"), artifact_location=other)
        assert "is not in project 'default'" in str(e.value), (other, e.value)


def test_a_model_card_reads_its_lineage_from_its_own_project_only(server):
    alpha, beta = two_projects(server)
    mlflow.set_tracking_uri(server.url)
    mlflow.set_workspace(alpha)
    with mlflow.start_run(experiment_id=mlflow.set_experiment(unique("lin")).experiment_id) as run:
        mlflow.log_param("alpha_secret", "s3cr3t")
        mlflow.log_metric("alpha_auc", 0.91)
    # beta registers a version naming alpha's run, with a source outside the store (as MLflow
    # accepts for a run it does not have): the run stays alpha's
    mlflow.set_workspace(beta)
    b = MlflowClient(server.url)
    m = unique("b-lin")
    b.create_registered_model(m)
    b.create_model_version(m, "s3://bucket/model", run_id=run.info.run_id)
    r = requests.post(f"{server.url}/api/atelier/model-cards/{m}/1", json={}, timeout=10,
                      headers={"X-MLFLOW-WORKSPACE": beta})
    assert r.status_code in (200, 201), r.text
    assert "alpha_secret" not in r.text and "s3cr3t" not in r.text and "alpha_auc" not in r.text, r.text


def test_each_project_has_its_own_datasets(server):
    alpha, beta = two_projects(server)
    ha, hb = {"X-MLFLOW-WORKSPACE": alpha}, {"X-MLFLOW-WORKSPACE": beta}
    csv = b"x,y\n1,a\n2,b\n3,a\n4,b\n"
    name = unique("d") + ".csv"
    r = requests.put(f"{server.url}/api/atelier/datasets/{name}", data=csv, headers=ha, timeout=10)
    assert r.status_code in (200, 201), r.text

    def listed(h):
        r = requests.get(f"{server.url}/api/atelier/datasets", headers=h, timeout=10)
        assert r.status_code == 200, r.text
        return [d["name"] for d in r.json()["datasets"]]

    assert name in listed(ha)
    assert name not in listed(hb)
    assert name not in listed({})
    r = requests.get(f"{server.url}/api/atelier/datasets/{name}/preview", headers=ha, timeout=10)
    assert r.status_code == 200, r.text
    r = requests.get(f"{server.url}/api/atelier/datasets/{name}/preview", headers=hb, timeout=10)
    assert r.status_code == 404, r.text
    raw = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/projects/{alpha}/datasets/{name}"
    assert requests.get(raw, headers=ha, timeout=10).content == csv
    assert requests.get(raw, headers=hb, timeout=10).status_code == 404
    # a job of another project cannot name it
    r = requests.post(f"{server.url}/api/atelier/automl", headers=hb, timeout=10,
                      json={"dataset": name, "target": "y", "time_budget": 5})
    assert r.status_code == 400 and "no dataset named" in r.text, r.text
    r = requests.post(f"{server.url}/api/atelier/jobs", headers=hb, timeout=10,
                      json={"kind": "processing", "spec": {"command": ["true"], "inputs": {"raw": f"datasets/{name}"}}})
    assert r.status_code == 400 and "nothing at" in r.text, r.text
    # deleting from another project changes nothing
    r = requests.delete(f"{server.url}/api/atelier/datasets/{name}", headers=hb, timeout=10)
    assert r.status_code == 404, r.text
    assert name in listed(ha)


def test_evaluation_datasets_belong_to_their_project(server):
    import mlflow.genai.datasets as gd

    alpha, beta = two_projects(server)
    mlflow.set_tracking_uri(server.url)
    mlflow.set_workspace(alpha)
    exp = mlflow.set_experiment(unique("eval")).experiment_id
    name = unique("qa")
    ds = gd.create_dataset(name=name, experiment_id=exp, tags={"team": "alpha"})
    ds.merge_records([{"inputs": {"q": "1+1"}, "expectations": {"a": "2"}}])
    assert gd.get_dataset(dataset_id=ds.dataset_id).name == name

    mlflow.set_workspace(beta)
    other = mlflow.set_experiment(unique("eval-b")).experiment_id
    with pytest.raises(MlflowException):
        gd.get_dataset(dataset_id=ds.dataset_id)
    with pytest.raises(MlflowException):
        gd.get_dataset(name=name)
    with pytest.raises(MlflowException):
        gd.set_dataset_tags(ds.dataset_id, {"team": "beta"})
    assert [d.dataset_id for d in gd.search_datasets()] == []
    # linking it to beta's experiment, or alpha's experiment to a beta dataset, is refused
    hb = {"X-MLFLOW-WORKSPACE": beta}
    r = requests.post(f"{server.url}/api/3.0/mlflow/datasets/{ds.dataset_id}/add-experiments", headers=hb,
                      json={"experiment_ids": [other]}, timeout=10)
    assert r.status_code == 404, r.text
    r = requests.post(f"{server.url}/api/3.0/mlflow/datasets/create", headers=hb,
                      json={"name": unique("x"), "experiment_ids": [exp]}, timeout=10)
    assert r.status_code == 404, r.text
    # deleting it from beta leaves it (deletes are idempotent, as MLflow's)
    gd.delete_dataset(dataset_id=ds.dataset_id)

    mlflow.set_workspace(alpha)
    back = gd.get_dataset(dataset_id=ds.dataset_id)
    assert back.tags.get("team") == "alpha"
    assert len(back.to_df()) == 1
