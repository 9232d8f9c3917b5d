"""The endpoints MLflow's server registers for its web UI beside `/api/2.0/mlflow/...`, which its
own server tests (tests/tracking/test_rest_tracking.py) and some clients call: `/get-artifact`,
`/ajax-api/2.0/mlflow/upload-artifact`, logged-model artifact files and listings,
`experiments/search-datasets`, the sampled `metrics/get-history-bulk-interval`, and the
`/ajax-api` mirror of the REST API. The MLflow client writes the data; `requests` calls the
endpoints as the UI does. Runs against MLflow's own server with ATELIER_TEST_REFERENCE=mlflow.
"""

from __future__ import annotations

import mlflow
import pytest
import requests
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric

from _helpers import API, assert_error, unique

AJAX = "/ajax-api/2.0/mlflow"
T0 = 1_700_000_000_000
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(scope="module")
def run_with_artifacts(server, tmp_path_factory):
    c = mlflow.MlflowClient(server.url)
    exp = c.create_experiment(unique("ui-artifacts"))
    run_id = c.create_run(exp).info.run_id
    d = tmp_path_factory.mktemp("arts")
    files = {
        "hello.txt": b"hello world\n",
        "dir/data.json": b'{"a": 1}',
        "dir/plot.png": PNG,
        "weights.bin": bytes(range(256)),
        "données é.txt": "ünïcode".encode(),
        "MLmodel": b"flavors: {}\n",
    }
    for rel, data in files.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    c.log_artifacts(run_id, str(d))
    return c, run_id, files


def get_artifact(server, **params):
    return requests.get(f"{server.url}/get-artifact", params=params, timeout=20)


# ---------------------------------------------------------------------------------------------
# GET /get-artifact


@pytest.mark.parametrize(
    ("rel", "content_type"),
    [
        ("hello.txt", "text/plain"),
        ("dir/data.json", "text/plain"),  # MLflow's text extensions include json
        ("MLmodel", "text/plain"),
        ("dir/plot.png", "image/png"),
        ("weights.bin", "application/octet-stream"),
    ],
)
def test_get_artifact_streams_a_run_file_as_an_attachment(server, run_with_artifacts, rel, content_type):
    _, run_id, files = run_with_artifacts
    r = get_artifact(server, path=rel, run_uuid=run_id)
    assert r.status_code == 200, r.text
    assert r.content == files[rel]
    assert r.headers["Content-Type"] == content_type
    name = rel.rsplit("/", 1)[-1]
    assert r.headers["Content-Disposition"] == f"attachment; filename={name}"
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_get_artifact_accepts_run_id_and_names_non_ascii_files_as_rfc_5987(server, run_with_artifacts):
    _, run_id, files = run_with_artifacts
    r = get_artifact(server, path="données é.txt", run_id=run_id)
    assert r.status_code == 200, r.text
    assert r.content == files["données é.txt"]
    assert r.headers["Content-Disposition"] == (
        "attachment; filename=\"donnees e.txt\"; filename*=UTF-8''donn%C3%A9es%20%C3%A9.txt"
    )


@pytest.mark.parametrize("bad", ["../../etc/passwd", "dir/../../x", "/etc/passwd", "dir/a#b"])
def test_get_artifact_refuses_path_traversal(server, run_with_artifacts, bad):
    _, run_id, _ = run_with_artifacts
    r = get_artifact(server, path=bad, run_uuid=run_id)
    body = assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert "Invalid path" in body["message"], body


def test_get_artifact_refuses_a_directory_and_answers_404_for_unknown_runs(server, run_with_artifacts):
    _, run_id, _ = run_with_artifacts
    body = assert_error(get_artifact(server, path="dir", run_uuid=run_id), 400, "INVALID_PARAMETER_VALUE")
    # (MLflow names the path in its artifact store, as Atelier does)
    assert body["message"].startswith("Artifact path refers to a directory, not a file: '"), body
    assert body["message"].endswith("/artifacts/dir'"), body
    assert_error(get_artifact(server, path="hello.txt", run_uuid="0" * 32), 404, "RESOURCE_DOES_NOT_EXIST")


def test_get_artifact_of_a_missing_file_is_404(server, run_with_artifacts):
    _, run_id, _ = run_with_artifacts
    assert_error(get_artifact(server, path="nope.txt", run_uuid=run_id), 404, "RESOURCE_DOES_NOT_EXIST")


# ---------------------------------------------------------------------------------------------
# GET /model-versions/get-artifact


@pytest.mark.mlflow_deviates("MLflow 3.17's server answers 500 for a version whose files are in mlflow-artifacts: "
                            "it opens the proxied location as a client would")
def test_model_version_artifact(server, client, run_with_artifacts):
    _, run_id, files = run_with_artifacts
    name = unique("mv-art")
    client.create_registered_model(name)
    # a runs:/ source and an mlflow-artifacts: source naming the same files
    v1 = client.create_model_version(name, f"runs:/{run_id}/dir", run_id).version
    v2 = client.create_model_version(name, client.get_run(run_id).info.artifact_uri + "/dir", run_id).version
    for v in (v2, v1):
        r = requests.get(f"{server.url}/model-versions/get-artifact",
                         params={"name": name, "version": v, "path": "plot.png"}, timeout=20)
        assert r.status_code == 200, r.text
        assert r.content == files["dir/plot.png"]
        assert r.headers["Content-Type"] == "image/png"
        assert r.headers["Content-Disposition"] == "attachment; filename=plot.png"
    r = requests.get(f"{server.url}/model-versions/get-artifact",
                     params={"name": name, "version": v1, "path": "../hello.txt"}, timeout=20)
    assert "Invalid path" in assert_error(r, 400, "INVALID_PARAMETER_VALUE")["message"]
    r = requests.get(f"{server.url}/model-versions/get-artifact",
                     params={"name": name, "version": 99, "path": "plot.png"}, timeout=20)
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


# ---------------------------------------------------------------------------------------------
# POST /ajax-api/2.0/mlflow/upload-artifact


def upload(server, data=None, **params):
    return requests.post(f"{server.url}{AJAX}/upload-artifact", params=params, data=data, timeout=30)


def test_upload_artifact_validates_as_mlflow(server, client):
    run_id = client.create_run(client.create_experiment(unique("upload"))).info.run_id
    cases = [
        ({}, None, "Request must specify run_uuid."),
        ({"run_uuid": run_id}, None, "Request must specify path."),
        ({"run_uuid": run_id, "path": ""}, None, "Request must specify path."),
        ({"run_uuid": run_id, "path": "../test.txt"}, b"x", "Invalid path"),
        ({"run_uuid": run_id, "path": "test.txt"}, None, "Request must specify data."),
        ({"run_uuid": run_id, "path": "big.bin"}, b"\0" * (10 * 1024 * 1024 + 1),
         "Artifact size is too large. Max size is 10MB."),
    ]
    for params, data, message in cases:
        body = assert_error(upload(server, data, **params), 400, "INVALID_PARAMETER_VALUE")
        assert message in body["message"], (params, body)
    assert_error(upload(server, b"x", run_uuid="0" * 32, path="a.txt"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert [f.path for f in client.list_artifacts(run_id)] == []


def test_uploaded_artifact_lands_in_the_run(server, client):
    run_id = client.create_run(client.create_experiment(unique("upload"))).info.run_id
    r = upload(server, "hello world", run_uuid=run_id, path="sub/test.txt")
    assert r.status_code == 200, r.text
    assert r.text == ""
    assert r.headers["Content-Type"].startswith("application/json")
    assert [(f.path, f.file_size) for f in client.list_artifacts(run_id, "sub")] == [("sub/test.txt", 11)]
    got = get_artifact(server, path="sub/test.txt", run_uuid=run_id)
    assert got.status_code == 200 and got.text == "hello world"
    # a second upload to the same path replaces the file
    assert upload(server, b"again", run_uuid=run_id, path="sub/test.txt").status_code == 200
    assert get_artifact(server, path="sub/test.txt", run_uuid=run_id).content == b"again"


# ---------------------------------------------------------------------------------------------
# Logged-model artifacts


@pytest.fixture(scope="module")
def logged_model(server, tmp_path_factory):
    c = mlflow.MlflowClient(server.url)
    exp = c.create_experiment(unique("lm-artifacts"))
    model = c.create_logged_model(exp, name="m")
    d = tmp_path_factory.mktemp("model")
    (d / "MLmodel").write_text("artifact_path: model\nflavors: {}\n")
    (d / "data").mkdir()
    (d / "data" / "w.bin").write_bytes(b"\x01\x02\x03")
    c.log_model_artifacts(model.model_id, str(d))
    return c, model


def test_logged_model_artifact_file(server, logged_model):
    _, model = logged_model
    url = f"{server.url}{AJAX}/logged-models/{model.model_id}/artifacts/files"
    r = requests.get(url, params={"artifact_file_path": "MLmodel"}, timeout=20)
    assert r.status_code == 200, r.text
    assert r.text == "artifact_path: model\nflavors: {}\n"
    assert r.headers["Content-Type"] == "text/plain"
    assert r.headers["Content-Disposition"] == "attachment; filename=MLmodel"
    r = requests.get(url, params={"artifact_file_path": "data/w.bin"}, timeout=20)
    assert r.status_code == 200 and r.content == b"\x01\x02\x03"
    for params in ({}, {"artifact_file_path": ""}):
        body = assert_error(requests.get(url, params=params, timeout=20), 400, "BAD_REQUEST")
        assert body["message"] == 'Request must include the "artifact_file_path" query parameter.'
    body = assert_error(requests.get(url, params={"artifact_file_path": "../../x"}, timeout=20), 400)
    assert "Invalid path" in body["message"]
    missing = f"{server.url}{AJAX}/logged-models/m-{'0' * 32}/artifacts/files"
    assert_error(requests.get(missing, params={"artifact_file_path": "MLmodel"}, timeout=20), 404,
                 "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("prefix", [API, AJAX])
def test_logged_model_artifact_listing(server, logged_model, prefix):
    _, model = logged_model
    url = f"{server.url}{prefix}/logged-models/{model.model_id}/artifacts/directories"
    r = requests.get(url, timeout=20)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["root_uri"] == model.artifact_location
    assert sorted(body["files"], key=lambda f: f["path"]) == [
        {"path": "MLmodel", "is_dir": False, "file_size": 33},
        {"path": "data", "is_dir": True},
    ]
    r = requests.get(url, params={"artifact_directory_path": "data"}, timeout=20)
    assert r.status_code == 200, r.text
    assert r.json()["files"] == [{"path": "data/w.bin", "is_dir": False, "file_size": 3}]
    body = assert_error(requests.get(url, params={"artifact_directory_path": "../x"}, timeout=20), 400)
    assert "Invalid path" in body["message"]


# ---------------------------------------------------------------------------------------------
# POST /ajax-api/2.0/mlflow/experiments/search-datasets


def search_datasets(server, body):
    return requests.post(f"{server.url}{AJAX}/experiments/search-datasets", json=body, timeout=20)


def test_search_datasets_validates_as_mlflow(server):
    for body, message in [
        ({}, "SearchDatasets request must specify at least one experiment_id."),
        ({"experiment_ids": []}, "SearchDatasets request must specify at least one experiment_id."),
        ({"experiment_ids": [str(i) for i in range(21)]},
         "SearchDatasets request cannot specify more than 20 experiment_ids. Received 21 experiment_ids."),
    ]:
        got = assert_error(search_datasets(server, body), 400, "INVALID_PARAMETER_VALUE")
        assert message in got["message"], got


def test_search_datasets_summarises_inputs_per_context(server, client):
    e1 = client.create_experiment(unique("ds"))
    e2 = client.create_experiment(unique("ds"))
    other = client.create_experiment(unique("ds"))

    def ds(name, digest):
        return Dataset(name=name, digest=digest, source_type="local", source='{"uri": "x"}')

    def ctx(value):
        return [InputTag(key="mlflow.data.context", value=value)]

    r1 = client.create_run(e1).info.run_id
    r2 = client.create_run(e1).info.run_id
    client.log_inputs(r1, [DatasetInput(ds("train", "d1"), ctx("training")),
                           DatasetInput(ds("eval", "d2"), ctx("eval"))])
    # the same dataset in the same context from another run counts once; another context is another entry
    client.log_inputs(r2, [DatasetInput(ds("train", "d1"), ctx("training")),
                           DatasetInput(ds("eval", "d2"), ctx("testing")),
                           DatasetInput(ds("raw", "d3"), [InputTag(key="other", value="x")])])
    r3 = client.create_run(e2).info.run_id
    client.log_inputs(r3, [DatasetInput(ds("train", "d1"), ctx("training"))])
    client.log_inputs(client.create_run(other).info.run_id, [DatasetInput(ds("nope", "d9"), ctx("training"))])

    r = search_datasets(server, {"experiment_ids": [e1, e2]})
    assert r.status_code == 200, r.text
    key = lambda d: (d["experiment_id"], d["name"], d.get("context", ""))  # noqa: E731
    assert sorted(r.json()["dataset_summaries"], key=key) == sorted([
        {"experiment_id": e1, "name": "train", "digest": "d1", "context": "training"},
        {"experiment_id": e1, "name": "eval", "digest": "d2", "context": "eval"},
        {"experiment_id": e1, "name": "eval", "digest": "d2", "context": "testing"},
        {"experiment_id": e1, "name": "raw", "digest": "d3"},
        {"experiment_id": e2, "name": "train", "digest": "d1", "context": "training"},
    ], key=key)
    empty = client.create_experiment(unique("ds"))
    r = search_datasets(server, {"experiment_ids": [empty]})
    assert r.status_code == 200 and r.json() == {}


def test_search_datasets_from_log_input(server, experiment_id):
    import pandas as pd

    df = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
    dataset = mlflow.data.from_pandas(df, name="frame")
    with mlflow.start_run():
        mlflow.log_input(dataset, context="training")
    r = search_datasets(server, {"experiment_ids": [experiment_id]})
    assert r.status_code == 200, r.text
    assert r.json()["dataset_summaries"] == [
        {"experiment_id": experiment_id, "name": "frame", "digest": dataset.digest, "context": "training"}
    ]


def test_search_datasets_is_an_ajax_only_route(server):
    r = requests.post(f"{server.url}{API}/experiments/search-datasets", json={"experiment_ids": ["0"]}, timeout=20)
    assert r.status_code == 404


# ---------------------------------------------------------------------------------------------
# GET .../metrics/get-history-bulk-interval


def bulk_interval(server, params, prefix=AJAX):
    return requests.get(f"{server.url}{prefix}/metrics/get-history-bulk-interval", params=params, timeout=20)


def test_bulk_interval_validates_as_mlflow(server, client):
    run_id = client.create_run(client.create_experiment(unique("bi"))).info.run_id
    cases = [
        ({"metric_key": "key"}, "Missing value for required parameter 'run_ids'."),
        ({"run_ids": [], "metric_key": "key"}, "Missing value for required parameter 'run_ids'."),
        ({"run_ids": [f"id_{i}" for i in range(101)], "metric_key": "key"},
         "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received 101 run_ids."),
        ({"run_ids": [run_id], "metric_key": "key", "max_results": 0}, "max_results must be between 1 and 2500."),
        ({"run_ids": [run_id], "metric_key": "key", "max_results": 2501}, "max_results must be between 1 and 2500."),
        ({"run_ids": [run_id], "metric_key": ""}, "Missing value for required parameter 'metric_key'."),
        ({"run_ids": [run_id], "max_results": 5}, "Missing value for required parameter 'metric_key'."),
        ({"run_ids": [run_id], "metric_key": "key", "start_step": 1, "end_step": 0, "max_results": 5},
         "end_step must be greater than start_step. Found start_step=1 and end_step=0."),
        ({"run_ids": [run_id], "metric_key": "key", "start_step": 1, "max_results": 5},
         "If either start step or end step are specified, both must be specified."),
    ]
    for params, message in cases:
        body = assert_error(bulk_interval(server, params), 400, "INVALID_PARAMETER_VALUE")
        assert message in body["message"], (params, body)
    # an unknown run has no points (MLflow does not look the runs up)
    r = bulk_interval(server, {"run_ids": ["0" * 32, run_id], "metric_key": "key"})
    assert r.status_code == 200 and r.json() == {}, r.text


def steps_of(resp, run_id):
    assert resp.status_code == 200, resp.text
    return [m["step"] for m in resp.json().get("metrics", []) if m["run_id"] == run_id]


def test_bulk_interval_samples_as_mlflow(server, client):
    exp = client.create_experiment(unique("bi"))
    r1 = client.create_run(exp).info.run_id
    r2 = client.create_run(exp).info.run_id
    client.log_batch(r1, metrics=[Metric("m", 10.0, 1, i) for i in range(10)])
    client.log_batch(r2, metrics=[Metric("m", 10.0, 1, i) for i in range(20)])

    r = bulk_interval(server, {"run_ids": [r1], "metric_key": "m", "max_results": 5})
    # NTILE(5) buckets' first points, the last point replacing the last pick
    assert steps_of(r, r1) == [0, 2, 4, 6, 9]
    assert r.json()["metrics"][0] == {"key": "m", "value": 10.0, "timestamp": 1, "step": 0, "run_id": r1}
    r = bulk_interval(server, {"run_ids": [r1], "metric_key": "m", "start_step": 0, "end_step": 4, "max_results": 5})
    assert steps_of(r, r1) == [0, 1, 2, 3, 4]
    # each run sampled on its own, runs in the order asked
    r = bulk_interval(server, {"run_ids": [r2, r1], "metric_key": "m", "max_results": 3})
    assert [m["run_id"] for m in r.json()["metrics"]] == [r2] * 3 + [r1] * 3
    assert steps_of(r, r2) == [0, 7, 19]
    assert steps_of(r, r1) == [0, 4, 9]
    r = bulk_interval(server, {"run_ids": [r2], "metric_key": "m", "max_results": 1})
    assert steps_of(r, r2) == [19]
    # points sharing a step are sampled as points, not as steps
    client.log_batch(r1, metrics=[Metric("m", 10.0, 2, i) for i in range(10)])
    r = bulk_interval(server, {"run_ids": [r1], "metric_key": "m", "max_results": 5})
    assert [(m["step"], m["timestamp"]) for m in r.json()["metrics"]] == [
        (0, 1), (2, 1), (4, 1), (6, 1), (9, 2)
    ]
    # unknown keys give no points; the /api/2.0 path answers the same
    r = bulk_interval(server, {"run_ids": [r1], "metric_key": "nope"}, prefix=API)
    assert r.status_code == 200 and r.json() == {}


# ---------------------------------------------------------------------------------------------
# The /ajax-api mirror


def test_ajax_api_mirrors_the_rest_api(server, client):
    exp = client.create_experiment(unique("ajax"))
    r = requests.post(f"{server.url}{AJAX}/runs/create", json={"experiment_id": exp}, timeout=20)
    assert r.status_code == 200, r.text
    run_id = r.json()["run"]["info"]["run_id"]
    r = requests.get(f"{server.url}{AJAX}/runs/get", params={"run_id": run_id}, timeout=20)
    assert r.status_code == 200 and r.json()["run"]["info"]["experiment_id"] == exp
    r = requests.get(f"{server.url}/ajax-api/2.0/mlflow-artifacts/artifacts", timeout=20)
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------------------------------------
# POST /ajax-api/2.0/mlflow/runs/create-promptlab-run


def promptlab(server, body):
    return requests.post(f"{server.url}{AJAX}/runs/create-promptlab-run", json=body, timeout=30)


def test_create_promptlab_run_validates_as_mlflow(server, client):
    exp = client.create_experiment(unique("promptlab"))
    body = {}
    for field, value in [
        ("experiment_id", exp),
        ("prompt_template", "my_prompt_template"),
        ("prompt_parameters", [{"key": "my_key", "value": "my_value"}]),
        ("model_route", "my_route"),
        ("model_input", "my_input"),
        ("mlflow_version", "1.0.0"),
    ]:
        got = assert_error(promptlab(server, body), 400, "INVALID_PARAMETER_VALUE")
        assert got["message"] == f"CreatePromptlabRun request must specify {field}.", got
        body[field] = value
    assert_error(promptlab(server, {**body, "prompt_parameters": []}), 400, "INVALID_PARAMETER_VALUE")
    assert promptlab(server, body).status_code == 200
    # only the valid request made a run
    assert len(client.search_runs([exp])) == 1


def test_create_promptlab_run_logs_the_run_as_mlflow(server, client, tmp_path):
    import json

    exp = client.create_experiment(unique("promptlab"))
    r = promptlab(server, {
        "experiment_id": exp,
        "run_name": "my_run_name",
        "prompt_template": "Say {{ my_key }}: é",
        "prompt_parameters": [{"key": "my_key", "value": "my_value"}, {"key": "n", "value": 3}],
        "model_route": "my_route",
        "model_parameters": [{"key": "temperature", "value": "0.1"}],
        "model_input": "my_input",
        "model_output": "my_output",
        "model_output_parameters": [{"key": "latency", "value": "100"}],
        "mlflow_version": "1.0.0",
        "user_id": "username",
        "start_time": 456,
    })
    assert r.status_code == 200, r.text
    run = r.json()["run"]
    info = run["info"]
    assert (info["run_name"], info["experiment_id"], info["user_id"], info["status"], info["start_time"]) == (
        "my_run_name", exp, "username", "FINISHED", 456
    )
    assert info["end_time"] >= 456
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params == {"model_route": "my_route", "prompt_template": "Say {{ my_key }}: é", "temperature": "0.1"}
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.loggedArtifacts"] == '[{"path": "eval_results_table.json", "type": "table"}]'
    assert tags["mlflow.runSourceType"] == "PROMPT_ENGINEERING"
    history = json.loads(tags["mlflow.log-model.history"])
    assert [(h["run_id"], h["artifact_path"], h["flavors"]) for h in history] == [(info["run_id"], "model", {})]

    run_id = info["run_id"]
    assert sorted(f.path for f in client.list_artifacts(run_id)) == ["eval_results_table.json", "model"]
    table = get_artifact(server, path="eval_results_table.json", run_id=run_id)
    assert table.status_code == 200
    assert table.text == ('{"columns": ["my_key", "n", "prompt", "output", "latency"], '
                          '"data": [["my_value", "3", "my_input", "my_output", "100"]]}')
    model_files = {f.path for f in client.list_artifacts(run_id, "model")}
    assert {"model/MLmodel", "model/parameters.yaml", "model/requirements.txt",
            "model/input_example.json", "model/serving_input_example.json"} <= model_files
    # the model's metadata and parameters read back as MLflow writes them
    import yaml
    from mlflow.models import Model

    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model", dst_path=str(tmp_path),
                                                tracking_uri=server.url)
    m = Model.load(local)
    assert m.flavors["python_function"]["loader_module"] == "mlflow.prompt.promptlab_model"
    assert m.run_id == run_id and m.artifact_path == "model"
    assert [c.name for c in m.signature.inputs.inputs] == ["my_key", "n"]
    assert m.load_input_example(local) == {"inputs": ["my_value", "3"]}
    with open(f"{local}/parameters.yaml") as f:
        assert yaml.safe_load(f) == {
            "prompt_template": "Say {{ my_key }}: é",
            "prompt_parameters": {"my_key": "my_value", "n": "3"},
            "model_parameters": {"temperature": "0.1"},
            "model_route": "my_route",
        }
