"""Model registry through the real client: registered models, versions, stages, tags and aliases."""

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException

from _helpers import API, assert_error, unique


@pytest.fixture
def model_run(client, experiment_id):
    """A run with a folder `model/` holding a (fake) model file."""
    with mlflow.start_run() as run:
        mlflow.log_text("weights-v1", "model/weights.txt")
        mlflow.log_text("other", "other/weights.txt")
    return run.info.run_id


def test_create_get_with_tags_and_description(client, server):
    name = unique("rm")
    rm = client.create_registered_model(name, tags={"team": "ml", "k": "v"}, description="first model")
    assert rm.name == name
    assert rm.description == "first model"
    assert rm.tags == {"team": "ml", "k": "v"}
    assert rm.creation_timestamp > 1_600_000_000_000

    got = client.get_registered_model(name)
    assert got.name == name and got.description == "first model"
    assert got.tags == {"team": "ml", "k": "v"}
    assert got.latest_versions == [] and got.aliases == {}

    r = requests.get(f"{server.url}{API}/registered-models/get", params={"name": name}, timeout=10)
    assert r.status_code == 200
    assert r.json()["registered_model"]["name"] == name


def test_duplicate_registered_model(client, server):
    name = unique("rm")
    client.create_registered_model(name)
    with pytest.raises(MlflowException) as ei:
        client.create_registered_model(name)
    assert ei.value.error_code == "RESOURCE_ALREADY_EXISTS"
    r = requests.post(f"{server.url}{API}/registered-models/create", json={"name": name}, timeout=10)
    assert_error(r, 400, "RESOURCE_ALREADY_EXISTS")


def test_unknown_registered_model_is_404(client, server):
    with pytest.raises(MlflowException) as ei:
        client.get_registered_model(unique("nope"))
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    r = requests.get(f"{server.url}{API}/registered-models/get", params={"name": "nope-x"}, timeout=10)
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = requests.get(f"{server.url}{API}/model-versions/get", params={"name": "nope-x", "version": "1"}, timeout=10)
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_rename_and_update_description(client, model_run):
    old, new = unique("old"), unique("new")
    client.create_registered_model(old)
    client.create_model_version(old, f"runs:/{model_run}/model", model_run)
    client.rename_registered_model(old, new)
    assert client.get_registered_model(new).name == new
    with pytest.raises(MlflowException):
        client.get_registered_model(old)
    # versions follow the model
    assert client.get_model_version(new, "1").name == new
    client.update_registered_model(new, description="updated")
    assert client.get_registered_model(new).description == "updated"


def test_search_registered_models(client):
    prefix = unique("srm")
    for i in range(5):
        client.create_registered_model(f"{prefix}-{i}", tags={"parity": "even" if i % 2 == 0 else "odd"})
    client.create_registered_model(unique("unrelated"))

    found = client.search_registered_models(filter_string=f"name LIKE '{prefix}%'")
    assert sorted(m.name for m in found) == [f"{prefix}-{i}" for i in range(5)]

    found = client.search_registered_models(filter_string=f"name = '{prefix}-3'")
    assert [m.name for m in found] == [f"{prefix}-3"]

    found = client.search_registered_models(filter_string=f"name ILIKE '{prefix.upper()}-%'")
    assert len(found) == 5

    found = client.search_registered_models(filter_string=f"name LIKE '{prefix}%' and tags.parity = 'odd'")
    assert sorted(m.name for m in found) == [f"{prefix}-1", f"{prefix}-3"]

    found = client.search_registered_models(filter_string=f"name LIKE '{prefix}%'", order_by=["name DESC"])
    assert [m.name for m in found] == [f"{prefix}-{i}" for i in reversed(range(5))]

    seen, token = [], None
    for _ in range(5):
        page = client.search_registered_models(
            filter_string=f"name LIKE '{prefix}%'", order_by=["name ASC"], max_results=2, page_token=token
        )
        seen += [m.name for m in page]
        token = page.token
        if not token:
            break
    assert seen == [f"{prefix}-{i}" for i in range(5)]


def test_registered_model_tags(client):
    name = unique("tags")
    client.create_registered_model(name, tags={"a": "1"})
    client.set_registered_model_tag(name, "b", "2")
    client.set_registered_model_tag(name, "a", "changed")
    assert client.get_registered_model(name).tags == {"a": "changed", "b": "2"}
    client.delete_registered_model_tag(name, "a")
    assert client.get_registered_model(name).tags == {"b": "2"}


def test_model_versions_create_get_search(client, model_run):
    name = unique("mv")
    client.create_registered_model(name)
    v1 = client.create_model_version(name, f"runs:/{model_run}/model", model_run, tags={"t": "1"}, description="d1")
    v2 = client.create_model_version(name, f"runs:/{model_run}/model", model_run)
    assert (v1.version, v2.version) == ("1", "2") or (v1.version, v2.version) == (1, 2)
    assert v1.status == "READY"
    assert v1.run_id == model_run
    assert v1.source == f"runs:/{model_run}/model"
    assert v1.current_stage == "None"

    got = client.get_model_version(name, "1")
    assert got.description == "d1" and got.tags == {"t": "1"}
    assert got.run_id == model_run

    by_name = client.search_model_versions(f"name = '{name}'")
    assert sorted(str(v.version) for v in by_name) == ["1", "2"]
    by_run = client.search_model_versions(f"run_id = '{model_run}'")
    assert {(v.name, str(v.version)) for v in by_run} == {(name, "1"), (name, "2")}

    rm = client.get_registered_model(name)
    assert [str(v.version) for v in rm.latest_versions] == ["2"]

    client.update_model_version(name, "2", description="second")
    assert client.get_model_version(name, "2").description == "second"

    client.set_model_version_tag(name, "2", "k", "v")
    assert client.get_model_version(name, "2").tags == {"k": "v"}
    client.delete_model_version_tag(name, "2", "k")
    assert client.get_model_version(name, "2").tags == {}

    assert client.get_model_version_download_uri(name, "1") == f"runs:/{model_run}/model"


def test_version_of_unknown_model_is_404(client, model_run):
    with pytest.raises(MlflowException) as ei:
        client.create_model_version(unique("none"), f"runs:/{model_run}/model", model_run)
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_stage_transitions_and_latest_versions(client, model_run):
    name = unique("stage")
    client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version(name, f"runs:/{model_run}/model", model_run)

    mv = client.transition_model_version_stage(name, "1", "Production")
    assert mv.current_stage == "Production"
    client.transition_model_version_stage(name, "2", "Staging")
    mv = client.transition_model_version_stage(name, "3", "Production", archive_existing_versions=True)
    assert mv.current_stage == "Production"
    assert client.get_model_version(name, "1").current_stage == "Archived"
    assert client.get_model_version(name, "2").current_stage == "Staging"  # only same-stage versions archive

    latest = {v.current_stage: str(v.version) for v in client.get_latest_versions(name)}
    assert latest == {"Production": "3", "Staging": "2", "Archived": "1"}
    prod = client.get_latest_versions(name, stages=["Production"])
    assert [str(v.version) for v in prod] == ["3"]

    with pytest.raises(MlflowException) as ei:
        client.transition_model_version_stage(name, "1", "Heaven")
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"


def test_aliases(client, model_run, tmp_path):
    name = unique("alias")
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{model_run}/other", model_run)
    client.create_model_version(name, f"runs:/{model_run}/model", model_run)

    client.set_registered_model_alias(name, "champion", "2")
    client.set_registered_model_alias(name, "challenger", "1")
    mv = client.get_model_version_by_alias(name, "champion")
    assert str(mv.version) == "2"
    assert "champion" in mv.aliases
    assert client.get_registered_model(name).aliases == {"champion": "2", "challenger": "1"}
    assert client.get_model_version(name, "1").aliases == ["challenger"]

    # models:/name@alias resolves to the aliased version's files
    p = mlflow.artifacts.download_artifacts(f"models:/{name}@champion", dst_path=str(tmp_path / "a"))
    assert (tmp_path / "a" / "weights.txt").read_text() == "weights-v1", p
    p = mlflow.artifacts.download_artifacts(f"models:/{name}/1", dst_path=str(tmp_path / "b"))
    assert (tmp_path / "b" / "weights.txt").read_text() == "other"

    # moving an alias
    client.set_registered_model_alias(name, "champion", "1")
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"

    client.delete_registered_model_alias(name, "champion")
    with pytest.raises(MlflowException) as ei:
        client.get_model_version_by_alias(name, "champion")
    assert ei.value.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
    assert client.get_registered_model(name).aliases == {"challenger": "1"}


def test_alias_to_missing_version_rejected(client, model_run):
    name = unique("alias")
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{model_run}/model", model_run)
    with pytest.raises(MlflowException) as ei:
        client.set_registered_model_alias(name, "champion", "7")
    assert ei.value.get_http_status_code() in (400, 404)


def test_delete_version_and_model(client, model_run):
    name = unique("del")
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{model_run}/model", model_run)
    client.create_model_version(name, f"runs:/{model_run}/model", model_run)
    client.set_registered_model_alias(name, "champion", "2")
    client.delete_model_version(name, "2")
    with pytest.raises(MlflowException) as ei:
        client.get_model_version(name, "2")
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_registered_model(name).aliases == {}  # alias went with the version
    assert [str(v.version) for v in client.search_model_versions(f"name = '{name}'")] == ["1"]
    # version numbers are not reused
    assert str(client.create_model_version(name, f"runs:/{model_run}/model", model_run).version) == "3"

    client.delete_registered_model(name)
    with pytest.raises(MlflowException) as ei:
        client.get_registered_model(name)
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.search_model_versions(f"name = '{name}'") == []


def test_register_model_on_plain_folder_needs_logged_model(client, model_run):
    """3.x: mlflow.register_model("runs:/<rid>/<path>") looks the path up as a LoggedModel
    (logged-models/search) and fails client-side when there is none; the server must answer the
    search (no 5xx) so the user sees this message instead of a retry storm."""
    name = unique("fluent")
    with pytest.raises(MlflowException, match="Unable to find a logged_model"):
        mlflow.register_model(f"runs:/{model_run}/model", name)


def test_search_model_versions_filters_and_order(client, model_run, experiment_id):
    name = unique("mvs")
    client.create_registered_model(name)
    other_run = client.create_run(experiment_id).info.run_id
    client.create_model_version(name, f"runs:/{model_run}/model", model_run, tags={"kind": "a"})
    client.create_model_version(name, f"runs:/{other_run}/model", other_run, tags={"kind": "b"})
    client.create_model_version(name, f"runs:/{model_run}/model", model_run, tags={"kind": "a"})

    def versions(flt, **kw):
        return [str(v.version) for v in client.search_model_versions(flt, **kw)]

    assert sorted(versions(f"name = '{name}' and run_id = '{other_run}'")) == ["2"]
    assert sorted(versions(f"name = '{name}' and tags.kind = 'a'")) == ["1", "3"]
    assert sorted(versions(f"run_id IN ('{other_run}')")) == ["2"]
    assert versions(f"name = '{name}'", order_by=["version_number DESC"]) == ["3", "2", "1"]
    assert versions(f"name = '{name}'", order_by=["version_number ASC"]) == ["1", "2", "3"]
    assert sorted(versions(f"name = '{name}' and version_number >= 2")) == ["2", "3"]
    assert versions(f"name = '{name}' and source_path = 'runs:/{other_run}/model'") == ["2"]
    seen, token = [], None
    for _ in range(4):
        page = client.search_model_versions(f"name = '{name}'", order_by=["version_number ASC"], max_results=2, page_token=token)
        seen += [str(v.version) for v in page]
        token = page.token
        if not token:
            break
    assert seen == ["1", "2", "3"]


def test_search_registered_models_invalid_filter_is_400(client):
    with pytest.raises(MlflowException) as ei:
        client.search_registered_models(filter_string="name <<< 'x'")
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"
