"""Experiments through the real mlflow client (and a few raw calls for status codes)."""

import mlflow
import pytest
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from _helpers import api_get, api_post, assert_error, unique


def test_default_experiment_exists(client):
    exp = client.get_experiment("0")
    assert exp.name == "Default"
    assert exp.lifecycle_stage == "active"


def test_set_experiment_creates_then_reuses(client, server):
    name = unique("setexp")
    # set_experiment relies on get-by-name answering 404 RESOURCE_DOES_NOT_EXIST
    r = api_get(server, "experiments/get-by-name", {"experiment_name": name})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")

    exp = mlflow.set_experiment(name)
    assert exp.name == name
    assert exp.lifecycle_stage == "active"
    assert exp.experiment_id.isdigit() and exp.experiment_id != "0"
    assert exp.artifact_location.startswith("mlflow-artifacts:/")
    assert exp.creation_time and exp.creation_time > 1_600_000_000_000  # epoch ms

    again = mlflow.set_experiment(name)
    assert again.experiment_id == exp.experiment_id
    # the new experiment is the active one for runs
    with mlflow.start_run() as run:
        assert run.info.experiment_id == exp.experiment_id


def test_create_with_tags_and_artifact_location_get_and_get_by_name(client):
    name = unique("created")
    loc = f"mlflow-artifacts:/custom-{unique('loc')}"
    exp_id = client.create_experiment(name, artifact_location=loc, tags={"team": "vision", "k": "v"})
    assert isinstance(exp_id, str) and exp_id.isdigit()

    exp = client.get_experiment(exp_id)
    assert exp.name == name
    assert exp.artifact_location == loc
    assert exp.tags["team"] == "vision" and exp.tags["k"] == "v"
    assert exp.lifecycle_stage == "active"

    by_name = client.get_experiment_by_name(name)
    assert by_name is not None and by_name.experiment_id == exp_id
    assert by_name.tags["team"] == "vision"

    assert client.get_experiment_by_name(unique("missing")) is None


def test_default_artifact_location_uses_experiment_id(client):
    exp_id = client.create_experiment(unique("loc"))
    assert client.get_experiment(exp_id).artifact_location == f"mlflow-artifacts:/{exp_id}"


def test_duplicate_name_is_resource_already_exists(client, server):
    name = unique("dup")
    client.create_experiment(name)
    with pytest.raises(MlflowException) as ei:
        client.create_experiment(name)
    assert ei.value.error_code == "RESOURCE_ALREADY_EXISTS"
    r = api_post(server, "experiments/create", {"name": name})
    assert_error(r, 400, "RESOURCE_ALREADY_EXISTS")


def test_get_unknown_experiment_is_404(client, server):
    with pytest.raises(MlflowException) as ei:
        client.get_experiment("987654321")
    assert ei.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert_error(api_get(server, "experiments/get", {"experiment_id": "987654321"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_search_filter_by_name_like_and_tags(client):
    prefix = unique("srch")
    ids = {}
    for i, team in enumerate(["a", "b", "a"]):
        ids[i] = client.create_experiment(f"{prefix}-{i}", tags={"team": team, "idx": str(i)})
    client.create_experiment(unique("other"), tags={"team": "a"})

    found = client.search_experiments(filter_string=f"name LIKE '{prefix}-%'")
    assert {e.experiment_id for e in found} == set(ids.values())

    found = client.search_experiments(filter_string=f"name LIKE '{prefix}-%' AND tags.team = 'a'")
    assert {e.experiment_id for e in found} == {ids[0], ids[2]}

    found = client.search_experiments(filter_string=f"name = '{prefix}-1'")
    assert [e.experiment_id for e in found] == [ids[1]]

    found = client.search_experiments(filter_string=f"name ILIKE '{prefix.upper()}-%'")
    assert {e.experiment_id for e in found} == set(ids.values())

    found = client.search_experiments(filter_string=f"name LIKE '{prefix}-%' and tags.team != 'a'")
    assert {e.experiment_id for e in found} == {ids[1]}


def test_search_order_by_and_pagination(client):
    prefix = unique("page")
    names = [f"{prefix}-{i:02d}" for i in range(7)]
    for n in names:
        client.create_experiment(n)

    desc = client.search_experiments(filter_string=f"name LIKE '{prefix}%'", order_by=["name DESC"])
    assert [e.name for e in desc] == sorted(names, reverse=True)
    asc = client.search_experiments(filter_string=f"name LIKE '{prefix}%'", order_by=["name ASC"])
    assert [e.name for e in asc] == sorted(names)

    seen, token, pages = [], None, 0
    while True:
        page = client.search_experiments(
            filter_string=f"name LIKE '{prefix}%'", order_by=["name ASC"], max_results=3, page_token=token
        )
        assert len(page) <= 3
        seen.extend(e.name for e in page)
        pages += 1
        token = page.token
        if not token:
            break
        assert pages < 10, "pagination does not terminate"
    assert seen == sorted(names), "pages must cover every experiment once, in order"
    assert pages == 3


def test_rename(client):
    old, new = unique("old"), unique("new")
    exp_id = client.create_experiment(old)
    client.rename_experiment(exp_id, new)
    assert client.get_experiment(exp_id).name == new
    assert client.get_experiment_by_name(old) is None
    assert client.get_experiment_by_name(new).experiment_id == exp_id


def test_delete_and_restore_with_view_types(client):
    prefix = unique("del")
    keep = client.create_experiment(f"{prefix}-keep")
    gone = client.create_experiment(f"{prefix}-gone")
    run = client.create_run(gone)

    client.delete_experiment(gone)
    assert client.get_experiment(gone).lifecycle_stage == "deleted"
    # runs of a deleted experiment are deleted too
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"

    flt = f"name LIKE '{prefix}%'"
    active = {e.experiment_id for e in client.search_experiments(filter_string=flt)}
    deleted = {e.experiment_id for e in client.search_experiments(filter_string=flt, view_type=ViewType.DELETED_ONLY)}
    everything = {e.experiment_id for e in client.search_experiments(filter_string=flt, view_type=ViewType.ALL)}
    assert active == {keep}
    assert deleted == {gone}
    assert everything == {keep, gone}

    client.restore_experiment(gone)
    assert client.get_experiment(gone).lifecycle_stage == "active"
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"
    assert {e.experiment_id for e in client.search_experiments(filter_string=flt)} == {keep, gone}


def test_set_experiment_on_deleted_experiment_fails(client):
    name = unique("deleted")
    exp_id = client.create_experiment(name)
    client.delete_experiment(exp_id)
    with pytest.raises(MlflowException):
        mlflow.set_experiment(name)


def test_set_and_delete_experiment_tag(client):
    exp_id = client.create_experiment(unique("tags"), tags={"a": "1"})
    client.set_experiment_tag(exp_id, "b", "2")
    client.set_experiment_tag(exp_id, "a", "changed")  # upsert
    tags = client.get_experiment(exp_id).tags
    assert tags["a"] == "changed" and tags["b"] == "2"
    client.delete_experiment_tag(exp_id, "a")
    tags = client.get_experiment(exp_id).tags
    assert "a" not in tags and tags["b"] == "2"


def test_search_by_attributes_and_time(client):
    prefix = unique("attr")
    a = client.create_experiment(f"{prefix}-a")
    b = client.create_experiment(f"{prefix}-b")
    ea, eb = client.get_experiment(a), client.get_experiment(b)
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}%' and creation_time >= {eb.creation_time}")
    assert b in {e.experiment_id for e in found}
    assert {e.experiment_id for e in client.search_experiments(
        filter_string=f"name LIKE '{prefix}%' and creation_time > {eb.creation_time + 10_000}")} == set()
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}%'", order_by=["creation_time ASC", "name ASC"])
    assert [e.experiment_id for e in found] == [a, b] or ea.creation_time == eb.creation_time


def test_search_invalid_filter_is_400(client):
    with pytest.raises(MlflowException) as ei:
        client.search_experiments(filter_string="name <<< 'x'")
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as ei:
        client.search_experiments(filter_string="name = 'a' or name = 'b'")
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"
