"""MLflow 3 GenAI evaluation datasets and registered scorers, with the real `mlflow` client (issue 14).

`mlflow.genai.datasets` talks to `/api/3.0/mlflow/datasets/...` (create, get, search, delete, tags,
records upserted by inputs, records read in pages, experiment links); `Scorer.register` and
`mlflow.genai.scorers.{list,get,delete}_scorer` talk to `/api/3.0/mlflow/scorers/...`. These tests
drive both through the client, their error paths through the client and raw REST, and check that
everything survives a server restart. They pass against a real `mlflow server` too
(ATELIER_TEST_REFERENCE=mlflow), except where marked `mlflow_deviates`.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import mlflow
import pandas as pd
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.genai import datasets as gd
from mlflow.genai.judges import make_judge
from mlflow.genai.scorers import RelevanceToQuery, delete_scorer, get_scorer, list_scorers
from mlflow.genai.scorers.registry import list_scorer_versions

from _helpers import assert_error, unique
from conftest import REFERENCE, start_server

V3 = "/api/3.0/mlflow"


def _code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.error_code


def _judge(name: str, instructions: str = "Is {{ outputs }} polite?"):
    return make_judge(name=name, instructions=instructions, model="openai:/gpt-4o-mini",
                      feedback_value_type=bool)


def _rest(server, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, f"{server.url}{V3}/{path}", timeout=20, **kw)


# ------------------------------------------------------------------------------------ datasets


def test_create_get_by_id_and_by_name(server, experiment_id):
    name = unique("qa")
    before = int(time.time() * 1000)
    ds = gd.create_dataset(name=name, experiment_id=experiment_id, tags={"team": "ml", "v": "1"})
    assert ds.dataset_id.startswith("d-") and len(ds.dataset_id) == 34
    assert ds.name == name
    assert ds.tags["team"] == "ml" and ds.tags["v"] == "1"
    # the client adds the local user as mlflow.user; the server makes it the creator
    assert ds.created_by == ds.tags["mlflow.user"]
    assert ds.experiment_ids == [experiment_id]
    assert before - 5000 <= ds.created_time <= int(time.time() * 1000) + 5000
    assert ds.last_update_time == ds.created_time
    assert len(ds.digest) == 8 and int(ds.digest, 16) >= 0

    by_id = gd.get_dataset(dataset_id=ds.dataset_id)
    assert (by_id.name, by_id.digest, by_id.created_time) == (name, ds.digest, ds.created_time)
    assert by_id.tags == ds.tags
    assert by_id.experiment_ids == [experiment_id]
    by_name = gd.get_dataset(name=name)
    assert by_name.dataset_id == ds.dataset_id

    # names are not unique: a second one makes the name ambiguous, as in MLflow
    gd.create_dataset(name=name, experiment_id=experiment_id)
    with pytest.raises(MlflowException, match="Multiple datasets") as e:
        gd.get_dataset(name=name)
    assert _code(e) == "INVALID_PARAMETER_VALUE"


def test_unknown_dataset_errors(server, experiment_id):
    missing = "d-" + "0" * 32
    with pytest.raises(MlflowException, match=f"Evaluation dataset with id '{missing}' not found") as e:
        gd.get_dataset(dataset_id=missing)
    assert _code(e) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException, match="not found") as e:
        gd.get_dataset(name=unique("nobody"))
    assert _code(e) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException, match=f"Could not find evaluation dataset with ID {missing}") as e:
        gd.set_dataset_tags(missing, {"a": "b"})
    assert _code(e) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        gd.add_dataset_to_experiments(missing, [experiment_id])
    assert _code(e) == "RESOURCE_DOES_NOT_EXIST"
    # deleting what is not there, or a tag that is not there, is no error (MLflow's store is idempotent)
    gd.delete_dataset(dataset_id=missing)
    gd.delete_dataset_tag(missing, "a")


def test_merge_records_by_inputs_and_to_df(server, experiment_id):
    ds = gd.create_dataset(name=unique("merge"), experiment_id=experiment_id)
    assert ds.to_df().empty
    first_digest = ds.digest
    ds.merge_records([
        {"inputs": {"question": "What is MLflow?", "lang": "en"}, "expectations": {"answer": "A platform"}},
        {"inputs": {"question": "What is Atelier?"}},
        {"inputs": {"question": "Score?"}, "outputs": {"text": "42"}, "expectations": {"score": 0.5},
         "tags": {"reviewed": "yes"}},
    ])
    df = ds.to_df()
    assert len(df) == 3
    by_q = {r["inputs"]["question"]: r for r in df.to_dict("records")}
    assert by_q["What is MLflow?"]["expectations"] == {"answer": "A platform"}
    # the client infers a source: HUMAN with expectations, CODE without
    assert by_q["What is MLflow?"]["source_type"] == "HUMAN"
    assert by_q["What is Atelier?"]["source_type"] == "CODE"
    assert by_q["What is Atelier?"]["expectations"] is None
    assert by_q["Score?"]["outputs"] == {"text": "42"}
    assert by_q["Score?"]["tags"]["reviewed"] == "yes"
    assert all(str(i).startswith("dr-") for i in df["dataset_record_id"])

    # same inputs (other key order): the record is updated, its expectations merged
    time.sleep(0.01)
    ds.merge_records(pd.DataFrame([
        {"inputs": {"lang": "en", "question": "What is MLflow?"}, "expectations": {"sources": ["docs"]}},
        {"inputs": {"question": "New one"}, "expectations": {"answer": "x"}},
    ]))
    df = ds.to_df()
    assert len(df) == 4
    by_q = {r["inputs"]["question"]: r for r in df.to_dict("records")}
    assert by_q["What is MLflow?"]["expectations"] == {"answer": "A platform", "sources": ["docs"]}

    got = gd.get_dataset(dataset_id=ds.dataset_id)
    assert json.loads(got.profile) == {"num_records": 4}
    schema = json.loads(got.schema)
    assert schema["inputs"] == {"question": "string", "lang": "string"}
    assert schema["expectations"]["score"] == "float"
    assert schema["expectations"]["sources"] == "array"
    assert schema["outputs"] == {"text": "string"}
    assert got.digest != first_digest
    assert got.last_update_time > got.created_time
    assert got.last_updated_by == got.tags["mlflow.user"]

    # the raw REST answer counts inserts and updates
    r = _rest(server, "POST", f"datasets/{ds.dataset_id}/records", json={"records": json.dumps([
        {"inputs": {"question": "New one"}, "outputs": None},
        {"inputs": {"question": "Raw"}, "source": {"source_type": "document", "source_data": {"source_id": "doc-7"}}},
    ])})
    assert r.status_code == 200, r.text
    assert r.json() == {"inserted_count": 1, "updated_count": 1}
    # (a fresh handle: the client caches the records it read)
    recs = {r["inputs"]["question"]: r for r in gd.get_dataset(dataset_id=ds.dataset_id).to_df().to_dict("records")}
    assert recs["Raw"]["source_type"] == "DOCUMENT" and recs["Raw"]["source_id"] == "doc-7"
    assert recs["New one"]["outputs"] is None


def test_records_from_traces(server, experiment_id):
    @mlflow.trace
    def answer(question):
        return f"echo {question}"

    answer("hello")
    mlflow.flush_trace_async_logging()
    traces = mlflow.search_traces(locations=[experiment_id], return_type="list")
    assert len(traces) == 1
    ds = gd.create_dataset(name=unique("from-traces"), experiment_id=experiment_id)
    ds.merge_records(traces)
    (rec,) = ds.to_df().to_dict("records")
    assert rec["inputs"] == {"question": "hello"}
    assert rec["outputs"] == "echo hello"
    assert rec["source_type"] == "TRACE"
    assert rec["source_id"] == traces[0].info.trace_id


def test_records_page_and_delete(server, experiment_id):
    ds = gd.create_dataset(name=unique("big"), experiment_id=experiment_id)
    n = 1205  # the client reads records 1000 a page
    ds.merge_records([{"inputs": {"i": i}, "expectations": {"double": 2 * i}} for i in range(n)])
    df = ds.to_df()
    assert len(df) == n
    assert sorted(r["i"] for r in df["inputs"]) == list(range(n))
    assert df["dataset_record_id"].is_unique

    # one raw page, then the next by its token
    r = _rest(server, "GET", f"datasets/{ds.dataset_id}/records", params={"max_results": 1000})
    assert r.status_code == 200, r.text
    page1 = r.json()
    assert len(json.loads(page1["records"])) == 1000 and page1["next_page_token"]
    r = _rest(server, "GET", f"datasets/{ds.dataset_id}/records",
              params={"max_results": 1000, "page_token": page1["next_page_token"]})
    page2 = r.json()
    assert len(json.loads(page2["records"])) == n - 1000 and not page2.get("next_page_token")

    doomed = df["dataset_record_id"].tolist()[:5]
    assert ds.delete_records(doomed + ["dr-" + "f" * 32]) == 5
    assert len(ds.to_df()) == n - 5
    assert json.loads(gd.get_dataset(dataset_id=ds.dataset_id).profile) == {"num_records": n - 5}


def test_tags_set_update_remove_delete(server, experiment_id):
    ds = gd.create_dataset(name=unique("tags"), experiment_id=experiment_id, tags={"env": "dev", "old": "x"})
    gd.set_dataset_tags(ds.dataset_id, {"env": "prod", "owner": "ana", "n": 3})
    tags = gd.get_dataset(dataset_id=ds.dataset_id).tags
    assert tags["env"] == "prod" and tags["owner"] == "ana" and tags["n"] == "3" and tags["old"] == "x"
    gd.delete_dataset_tag(ds.dataset_id, "old")
    gd.delete_dataset_tag(ds.dataset_id, "never-set")
    tags = gd.get_dataset(dataset_id=ds.dataset_id).tags
    assert "old" not in tags and tags["env"] == "prod"


def test_set_tags_skips_none_and_leaves_the_digest(server, experiment_id):
    # MLflow's store ignores a None value (its own tests pin this; the fluent docstring says it
    # removes the tag): delete_dataset_tag is the way to remove one. Tags are not records: the
    # digest and the last update stay.
    ds = gd.create_dataset(name=unique("none"), experiment_id=experiment_id, tags={"kept": "yes"})
    gd.set_dataset_tags(ds.dataset_id, {"kept": None, "new": "1"})
    got = gd.get_dataset(dataset_id=ds.dataset_id)
    assert got.tags["kept"] == "yes" and got.tags["new"] == "1"
    assert (got.digest, got.last_update_time) == (ds.digest, ds.last_update_time)
    r = _rest(server, "GET", f"datasets/d-{'2' * 32}/experiment-ids")
    assert r.status_code == 200 and r.json().get("experiment_ids", []) == []


def test_search_filter_order_and_pages(server, client):
    exp = client.create_experiment(unique("search"))
    other = client.create_experiment(unique("search-other"))
    prefix = unique("s")
    made = []
    for i, env in enumerate(["prod", "dev", "prod"]):
        made.append(gd.create_dataset(name=f"{prefix}-{i}", experiment_id=exp, tags={"env": env}))
        time.sleep(0.005)
    gd.create_dataset(name=f"{prefix}-elsewhere", experiment_id=other)

    in_exp = gd.search_datasets(experiment_ids=[exp])
    # newest first by default
    assert [d.dataset_id for d in in_exp] == [d.dataset_id for d in reversed(made)]
    prod = gd.search_datasets(experiment_ids=[exp], filter_string="tags.env = 'prod'", order_by=["name ASC"])
    assert [d.name for d in prod] == [f"{prefix}-0", f"{prefix}-2"]
    like = gd.search_datasets(filter_string=f"name LIKE '{prefix}-%'", order_by=["name DESC"])
    assert [d.name for d in like] == [f"{prefix}-elsewhere", f"{prefix}-2", f"{prefix}-1", f"{prefix}-0"]
    exact = gd.search_datasets(filter_string=f"name = '{prefix}-1' AND created_time > 0")
    assert [d.dataset_id for d in exact] == [made[1].dataset_id]

    page = client.search_datasets(experiment_ids=[exp], max_results=2)
    assert len(page) == 2 and page.token
    rest = client.search_datasets(experiment_ids=[exp], max_results=2, page_token=page.token)
    assert len(rest) == 1 and not rest.token
    assert {d.dataset_id for d in [*page, *rest]} == {d.dataset_id for d in made}

    for bad in ["nosuch = 'x'", "metrics.x > 1"]:
        with pytest.raises(MlflowException) as e:
            client.search_datasets(filter_string=bad)
        assert _code(e) == "INVALID_PARAMETER_VALUE", bad
    with pytest.raises(MlflowException) as e:
        client.search_datasets(order_by=["digest ASC"])
    assert _code(e) == "INVALID_PARAMETER_VALUE"


def test_experiment_links(server, client, experiment_id):
    other = client.create_experiment(unique("link"))
    ds = gd.create_dataset(name=unique("links"), experiment_id=experiment_id)
    linked = gd.add_dataset_to_experiments(ds.dataset_id, [other, experiment_id])
    assert sorted(linked.experiment_ids, key=int) == sorted([experiment_id, other], key=int)
    assert [d.dataset_id for d in gd.search_datasets(experiment_ids=[other])] == [ds.dataset_id]

    with pytest.raises(MlflowException, match="No Experiment with id=987654") as e:
        gd.add_dataset_to_experiments(ds.dataset_id, ["987654"])
    assert _code(e) == "RESOURCE_DOES_NOT_EXIST"

    left = gd.remove_dataset_from_experiments(ds.dataset_id, [experiment_id, "987654"])
    assert left.experiment_ids == [other]
    r = _rest(server, "GET", f"datasets/{ds.dataset_id}/experiment-ids")
    assert r.status_code == 200 and r.json()["experiment_ids"] == [other]
    assert gd.search_datasets(experiment_ids=[experiment_id]) == []


def test_delete_dataset_removes_it_and_its_records(server, experiment_id):
    ds = gd.create_dataset(name=unique("gone"), experiment_id=experiment_id)
    ds.merge_records([{"inputs": {"q": 1}}])
    gd.delete_dataset(dataset_id=ds.dataset_id)
    with pytest.raises(MlflowException) as e:
        gd.get_dataset(dataset_id=ds.dataset_id)
    assert _code(e) == "RESOURCE_DOES_NOT_EXIST"
    assert gd.search_datasets(experiment_ids=[experiment_id]) == []
    with pytest.raises(MlflowException, match="Dataset not found"):
        ds.merge_records([{"inputs": {"q": 2}}])


def test_bad_dataset_requests_get_400(server, experiment_id):
    assert_error(_rest(server, "POST", "datasets/create", json={"experiment_ids": [experiment_id]}),
                 400, "INVALID_PARAMETER_VALUE")
    ds = gd.create_dataset(name=unique("bad"), experiment_id=experiment_id)
    path = f"datasets/{ds.dataset_id}"
    assert_error(_rest(server, "PATCH", f"{path}/tags", json={}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(_rest(server, "POST", f"{path}/records", json={}), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.mlflow_deviates("MLflow's server answers 500 for these instead of saying what to fix")
def test_malformed_records_and_tags_get_400(server, experiment_id):
    ds = gd.create_dataset(name=unique("malformed"), experiment_id=experiment_id)
    path = f"datasets/{ds.dataset_id}"
    body = assert_error(_rest(server, "PATCH", f"{path}/tags", json={"tags": "not json"}),
                        400, "INVALID_PARAMETER_VALUE")
    assert "tags" in body["message"]
    for records, words in [
        ("not json", "records"),
        (json.dumps({"inputs": {}}), "list"),
        (json.dumps([{"expectations": {"a": 1}}]), "inputs"),
        (json.dumps([{"inputs": "text"}]), "inputs"),
        (json.dumps([{"inputs": {"q": 1}, "source": {"source_type": "ROBOT"}}]), "source type"),
    ]:
        body = assert_error(_rest(server, "POST", f"{path}/records", json={"records": records}),
                            400, "INVALID_PARAMETER_VALUE")
        assert words in body["message"], body
    r = _rest(server, "POST", "datasets/search", json={"filter_string": "name ~ 'x'"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    missing = "d-" + "1" * 32
    assert_error(_rest(server, "POST", f"datasets/{missing}/records",
                       json={"records": json.dumps([{"inputs": {"q": 1}}])}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(_rest(server, "GET", f"datasets/{missing}/records"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(_rest(server, "GET", f"{path}/records", params={"page_token": "garbage!"}),
                 400, "INVALID_PARAMETER_VALUE")


def test_evaluate_against_a_managed_dataset(server, experiment_id):
    """What the datasets are for: mlflow.genai.evaluate reads the records and logs the dataset as the run's input."""
    from mlflow.genai.scorers import scorer

    ds = gd.create_dataset(name=unique("eval"), experiment_id=experiment_id)
    ds.merge_records([
        {"inputs": {"q": "a"}, "expectations": {"expected": "A"}},
        {"inputs": {"q": "b"}, "expectations": {"expected": "not B"}},
    ])

    @scorer
    def exact(outputs, expectations):
        return outputs == expectations["expected"]

    res = mlflow.genai.evaluate(data=gd.get_dataset(dataset_id=ds.dataset_id),
                                predict_fn=lambda q: q.upper(), scorers=[exact])
    assert res.metrics["exact/mean"] == pytest.approx(0.5)
    (inp,) = mlflow.get_run(res.run_id).inputs.dataset_inputs
    assert inp.dataset.source_type == "mlflow_evaluation_dataset"
    assert json.loads(inp.dataset.source)["dataset_id"] == ds.dataset_id


# ------------------------------------------------------------------------------------- scorers


def test_register_version_list_get_delete(server, experiment_id):
    name = unique("polite")
    judge = _judge(name)
    judge.register(experiment_id=experiment_id)
    _judge(name, "Is {{ outputs }} polite and short?").register(experiment_id=experiment_id)
    RelevanceToQuery().register(experiment_id=experiment_id)

    listed = list_scorers(experiment_id=experiment_id)
    assert sorted(s.name for s in listed) == sorted([name, "relevance_to_query"])
    latest = next(s for s in listed if s.name == name)
    assert "short" in latest.instructions

    versions = list_scorer_versions(name=name, experiment_id=experiment_id)
    assert [v for _, v in versions] == [1, 2]
    assert "short" not in versions[0][0].instructions

    v1 = get_scorer(name=name, experiment_id=experiment_id, version=1)
    assert v1.instructions == "Is {{ outputs }} polite?" and v1.model == "openai:/gpt-4o-mini"
    assert "short" in get_scorer(name=name, experiment_id=experiment_id).instructions

    # the raw answer: ids, versions and creation time
    r = _rest(server, "GET", "scorers/versions", params={"experiment_id": experiment_id, "name": name})
    assert r.status_code == 200, r.text
    rows = r.json()["scorers"]
    assert [row["scorer_version"] for row in rows] == [1, 2]
    assert rows[0]["scorer_id"] == rows[1]["scorer_id"]
    assert int(rows[0]["experiment_id"]) == int(experiment_id)
    assert rows[0]["creation_time"] <= rows[1]["creation_time"]

    delete_scorer(name=name, experiment_id=experiment_id, version=2)
    assert "short" not in get_scorer(name=name, experiment_id=experiment_id).instructions
    with pytest.raises(MlflowException, match="version 2 not found") as e:
        get_scorer(name=name, experiment_id=experiment_id, version=2)
    assert _code(e) == "RESOURCE_DOES_NOT_EXIST"
    delete_scorer(name=name, experiment_id=experiment_id, version="all")
    assert [s.name for s in list_scorers(experiment_id=experiment_id)] == ["relevance_to_query"]
    # a name registered again after a full delete starts over at version 1
    _judge(name).register(experiment_id=experiment_id)
    assert [v for _, v in list_scorer_versions(name=name, experiment_id=experiment_id)] == [1]


def test_scorers_are_per_experiment_and_listed_across(server, client):
    a = client.create_experiment(unique("sa"))
    b = client.create_experiment(unique("sb"))
    _judge("shared").register(experiment_id=a)
    _judge("shared", "Is {{ outputs }} kind?").register(experiment_id=b)
    assert [v for _, v in list_scorer_versions(name="shared", experiment_id=b)] == [1]
    r = _rest(server, "GET", "scorers/list", params={"experiment_ids": [a, b]})
    assert r.status_code == 200, r.text
    got = [(row["experiment_id"], row["scorer_name"]) for row in r.json()["scorers"]]
    assert sorted((int(e), n) for e, n in got) == sorted([(int(a), "shared"), (int(b), "shared")])
    assert_error(_rest(server, "GET", "scorers/list", params={"experiment_id": a, "experiment_ids": [b]}),
                 400, "INVALID_PARAMETER_VALUE")


def test_scorer_errors(server, client, experiment_id):
    missing = unique("nobody")
    with pytest.raises(MlflowException, match=f"Scorer with name '{missing}' not found for experiment") as e:
        get_scorer(name=missing, experiment_id=experiment_id)
    assert _code(e) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        delete_scorer(name=missing, experiment_id=experiment_id, version="all")
    assert _code(e) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        list_scorers(experiment_id="987654")
    assert _code(e) == "RESOURCE_DOES_NOT_EXIST"

    gone = client.create_experiment(unique("deleted"))
    client.delete_experiment(gone)
    with pytest.raises(MlflowException, match="must be in the 'active' state") as e:
        _judge("late").register(experiment_id=gone)
    assert _code(e) == "INVALID_PARAMETER_VALUE"

    def register(body):
        return _rest(server, "POST", "scorers/register", json={"experiment_id": experiment_id, **body})

    ok = json.dumps(_judge("raw").model_dump())
    assert_error(register({"name": "x", "serialized_scorer": "{not json"}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(register({"name": "   ", "serialized_scorer": ok}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(register({"serialized_scorer": ok}), 400, "INVALID_PARAMETER_VALUE")
    assert_error(register({"name": "x"}), 400, "INVALID_PARAMETER_VALUE")
    # a @scorer function carries code the loading client would exec: refused, as MLflow's server does
    custom = {"name": "mine", "call_source": "return 1", "call_signature": "(outputs)",
              "original_func_name": "mine", "mlflow_version": mlflow.__version__, "serialization_version": 1}
    body = assert_error(register({"name": "mine", "serialized_scorer": json.dumps(custom)}),
                        400, "INVALID_PARAMETER_VALUE")
    assert "MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS" in body["message"]
    steering = {"name": "tp", "third_party_scorer_data": {"model": "openai:/gpt-4o-mini",
                                                          "kwargs": {"api_base": "http://evil.example"}}}
    body = assert_error(register({"name": "tp", "serialized_scorer": json.dumps(steering)}),
                        400, "INVALID_PARAMETER_VALUE")
    assert "api_base" in body["message"]
    r = register({"name": "raw", "serialized_scorer": ok})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["version"] == 1 and out["name"] == "raw" and out["experiment_id"] == experiment_id
    assert json.loads(out["serialized_scorer"])["name"] == "raw" and out["scorer_id"]


# ------------------------------------------------------------------------------------- restart


def test_datasets_and_scorers_survive_a_restart(tmp_path):
    data = tmp_path / "data"
    srv = start_server(data)
    try:
        mlflow.set_tracking_uri(srv.url)
        exp = mlflow.MlflowClient(srv.url).create_experiment(unique("persist"))
        ds = gd.create_dataset(name=unique("kept"), experiment_id=exp, tags={"keep": "me"})
        ds.merge_records([{"inputs": {"q": i}, "expectations": {"a": i}} for i in range(3)])
        _judge("kept").register(experiment_id=exp)
        _judge("kept", "Is {{ outputs }} kept?").register(experiment_id=exp)
        before = gd.get_dataset(dataset_id=ds.dataset_id)
    finally:
        srv.stop()
    srv = start_server(data)
    try:
        mlflow.set_tracking_uri(srv.url)
        after = gd.get_dataset(dataset_id=ds.dataset_id)
        assert (after.name, after.digest, after.tags, after.profile, after.schema) == (
            before.name, before.digest, before.tags, before.profile, before.schema)
        assert after.experiment_ids == [exp]
        df = after.to_df()
        assert sorted((r["inputs"]["q"], r["expectations"]["a"]) for r in df.to_dict("records")) == [
            (0, 0), (1, 1), (2, 2)]
        assert [v for _, v in list_scorer_versions(name="kept", experiment_id=exp)] == [1, 2]
        assert "kept" in get_scorer(name="kept", experiment_id=exp).instructions
    finally:
        srv.stop()


@pytest.mark.skipif(REFERENCE, reason="several `atelier serve` processes on one database")
def test_two_servers_on_one_database_share_datasets_and_scorer_versions(tmp_path):
    data = tmp_path / "shared"
    a = start_server(data)
    try:
        b = start_server(data)
        try:
            exp = mlflow.MlflowClient(a.url).create_experiment(unique("shared"))
            body = json.dumps(_judge("both").model_dump())

            def register(i):
                url = (a if i % 2 else b).url
                r = requests.post(f"{url}{V3}/scorers/register", timeout=20,
                                  json={"experiment_id": exp, "name": "both", "serialized_scorer": body})
                assert r.status_code == 200, r.text
                return r.json()["version"]

            with ThreadPoolExecutor(4) as pool:
                versions = list(pool.map(register, range(12)))
            # numbered in the writing transaction: no number is handed out twice across processes
            assert sorted(versions) == list(range(1, 13))

            made = requests.post(f"{a.url}{V3}/datasets/create", timeout=20,
                                 json={"name": "shared", "experiment_ids": [exp]}).json()["dataset"]
            r = requests.post(f"{b.url}{V3}/datasets/{made['dataset_id']}/records", timeout=20,
                              json={"records": json.dumps([{"inputs": {"q": 1}}])})
            assert r.json() == {"inserted_count": 1, "updated_count": 0}
            r = requests.post(f"{a.url}{V3}/datasets/{made['dataset_id']}/records", timeout=20,
                              json={"records": json.dumps([{"inputs": {"q": 1}, "expectations": {"a": 1}}])})
            assert r.json() == {"inserted_count": 0, "updated_count": 1}
            got = requests.get(f"{b.url}{V3}/datasets/{made['dataset_id']}", timeout=20).json()["dataset"]
            assert json.loads(got["profile"]) == {"num_records": 1}
        finally:
            b.stop()
    finally:
        a.stop()
