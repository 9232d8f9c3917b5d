"""search_runs with MLflow's filter grammar, ordering, paging and view types."""

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

from _helpers import api_post, assert_error, unique

T0 = 1_700_000_000_000  # fixed start times make attribute filters and ordering deterministic


@pytest.fixture(scope="module")
def corpus(server):
    """One experiment with a designed set of runs:

    name       start   status    params               metrics            tags
    alpha-x1   T0+1    FINISHED  model=gbm            rmse=0.5 acc=0.9   grp=g1
    beta-x2    T0+2    FINISHED  model=gbm            rmse=1.5 acc=0.8   grp=g2
    gamma      T0+3    FAILED    model=rf             rmse=0.7           grp=g1
    delta-X3   T0+4    RUNNING   model=GBM, x=1       (none)             (none)
    eps        T0+5    KILLED    (none)               rmse=0.2
    zeta-del   T0+6    FINISHED  model=gbm            rmse=0.1   -> deleted
    """
    mlflow.set_tracking_uri(server.url)
    c = mlflow.MlflowClient(server.url)
    exp = c.create_experiment(unique("search"))
    spec = [
        ("alpha-x1", "FINISHED", {"model": "gbm"}, {"rmse": 0.5, "acc": 0.9}, {"grp": "g1"}),
        ("beta-x2", "FINISHED", {"model": "gbm"}, {"rmse": 1.5, "acc": 0.8}, {"grp": "g2"}),
        ("gamma", "FAILED", {"model": "rf"}, {"rmse": 0.7}, {"grp": "g1"}),
        ("delta-X3", "RUNNING", {"model": "GBM", "x": "1"}, {}, {}),
        ("eps", "KILLED", {}, {"rmse": 0.2}, {}),
        ("zeta-del", "FINISHED", {"model": "gbm"}, {"rmse": 0.1}, {}),
    ]
    ids = {}
    for i, (name, status, params, metrics, tags) in enumerate(spec, start=1):
        run = c.create_run(exp, start_time=T0 + i, run_name=name)
        rid = run.info.run_id
        c.log_batch(
            rid,
            metrics=[Metric(k, v, T0 + i, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        if status != "RUNNING":
            c.update_run(rid, status=status)
        ids[name.split("-")[0]] = rid
    c.delete_run(ids["zeta"])
    return {"exp": exp, "ids": ids, "client": c}


def names(corpus, runs):
    rev = {v: k for k, v in corpus["ids"].items()}
    return [rev[r.info.run_id] for r in runs]


def search(corpus, flt="", **kw):
    return corpus["client"].search_runs([corpus["exp"]], filter_string=flt, **kw)


def found(corpus, flt, **kw):
    return set(names(corpus, search(corpus, flt, **kw)))


def test_no_filter_returns_active_runs_newest_first(corpus):
    # default order: start_time DESC
    assert names(corpus, search(corpus)) == ["eps", "delta", "gamma", "beta", "alpha"]


def test_combined_filter(corpus):
    flt = "metrics.rmse < 1 and params.model = 'gbm' and tags.`mlflow.runName` LIKE '%x%'"
    assert found(corpus, flt) == {"alpha"}
    assert found(corpus, flt.replace(" and ", " AND ")) == {"alpha"}


@pytest.mark.parametrize(
    "flt,expected",
    [
        ("metrics.rmse = 0.5", {"alpha"}),
        ("metrics.rmse != 0.5", {"beta", "gamma", "eps"}),
        ("metrics.rmse < 0.5", {"eps"}),
        ("metrics.rmse <= 0.5", {"eps", "alpha"}),
        ("metrics.rmse > 0.5", {"beta", "gamma"}),
        ("metrics.rmse >= 0.7", {"beta", "gamma"}),
        ("metrics.rmse >= 0.2 and metrics.rmse <= 0.7", {"eps", "alpha", "gamma"}),
        ("metric.acc > 0.85", {"alpha"}),
        ('metrics."rmse" < 0.3', {"eps"}),
        ("metrics.`rmse` < 0.3", {"eps"}),
        ("metrics.rmse < 1e3", {"alpha", "beta", "gamma", "eps"}),
        ("metrics.nosuch > 0", set()),
    ],
)
def test_metric_comparisons(corpus, flt, expected):
    assert found(corpus, flt) == expected


@pytest.mark.parametrize(
    "flt,expected",
    [
        ("params.model = 'gbm'", {"alpha", "beta"}),
        ("params.model != 'gbm'", {"gamma", "delta"}),
        ("params.model LIKE 'gbm'", {"alpha", "beta"}),
        ("params.model LIKE 'g%'", {"alpha", "beta"}),
        ("params.model ILIKE 'gbm'", {"alpha", "beta", "delta"}),
        ("params.model ILIKE '%B_'", {"alpha", "beta", "delta"}),
        ("param.model = \"rf\"", {"gamma"}),
        ("params.x IS NULL", {"alpha", "beta", "gamma", "eps"}),
        ("params.x IS NOT NULL", {"delta"}),
        ("params.model IS NULL", {"eps"}),
        ("tags.grp = 'g1'", {"alpha", "gamma"}),
        ("tags.grp != 'g1'", {"beta"}),
        ("tags.grp IS NULL", {"delta", "eps"}),
        ("tag.grp LIKE 'g%'", {"alpha", "beta", "gamma"}),
        ("tags.`mlflow.runName` = 'gamma'", {"gamma"}),
        ("tags.`mlflow.runName` ILIKE '%X%'", {"alpha", "beta", "delta"}),
        ("tags.`mlflow.runName` LIKE '%X%'", {"delta"}),
    ],
)
def test_param_and_tag_comparisons(corpus, flt, expected):
    assert found(corpus, flt) == expected


def test_attribute_filters(corpus):
    ids = corpus["ids"]
    assert found(corpus, "attributes.status = 'FINISHED'") == {"alpha", "beta"}
    assert found(corpus, "attributes.status != 'FINISHED'") == {"gamma", "delta", "eps"}
    assert found(corpus, "attributes.status LIKE 'F%'") == {"alpha", "beta", "gamma"}
    assert found(corpus, f"attributes.start_time > {T0 + 3}") == {"delta", "eps"}
    assert found(corpus, f"attributes.start_time <= {T0 + 2}") == {"alpha", "beta"}
    assert found(corpus, f"attributes.run_id IN ('{ids['alpha']}', '{ids['gamma']}')") == {"alpha", "gamma"}
    assert found(corpus, f"attributes.run_id NOT IN ('{ids['alpha']}', '{ids['gamma']}')") == {"beta", "delta", "eps"}
    assert found(corpus, f"attributes.run_id = '{ids['beta']}'") == {"beta"}
    assert found(corpus, "attributes.run_name = 'gamma'") == {"gamma"}
    assert found(corpus, "attributes.run_name LIKE '%-x%'") == {"alpha", "beta"}
    assert found(corpus, "attributes.run_name ILIKE '%-x%'") == {"alpha", "beta", "delta"}


def test_bare_attribute_names_without_prefix(corpus):
    """MLflow treats an identifier without an entity prefix as an attribute (filter and order_by)."""
    assert found(corpus, "run_name = 'eps'") == {"eps"}
    assert found(corpus, "status = 'FAILED'") == {"gamma"}
    assert names(corpus, search(corpus, order_by=["start_time ASC"])) == ["alpha", "beta", "gamma", "delta", "eps"]


def test_order_by_metric_missing_last(corpus):
    assert names(corpus, search(corpus, order_by=["metrics.rmse ASC"])) == ["eps", "alpha", "gamma", "beta", "delta"]
    assert names(corpus, search(corpus, order_by=["metrics.rmse DESC"])) == ["beta", "gamma", "alpha", "eps", "delta"]
    assert names(corpus, search(corpus, order_by=["metrics.rmse"])) == ["eps", "alpha", "gamma", "beta", "delta"]


def test_order_by_param_missing_last(corpus):
    runs = search(corpus, order_by=["params.model ASC", "attributes.start_time ASC"])
    assert names(corpus, runs) == ["delta", "alpha", "beta", "gamma", "eps"]  # 'GBM' < 'gbm' < 'rf'
    runs = search(corpus, order_by=["params.model DESC", "attributes.start_time ASC"])
    assert names(corpus, runs) == ["gamma", "alpha", "beta", "delta", "eps"]


def test_order_by_attributes(corpus):
    assert names(corpus, search(corpus, order_by=["attributes.start_time ASC"])) == ["alpha", "beta", "gamma", "delta", "eps"]
    assert names(corpus, search(corpus, order_by=["attributes.run_name DESC"])) == ["gamma", "eps", "delta", "beta", "alpha"]
    assert names(corpus, search(corpus, order_by=["attributes.start_time DESC"])) == ["eps", "delta", "gamma", "beta", "alpha"]
    assert names(corpus, search(corpus, order_by=["attributes.status ASC", "attributes.start_time ASC"])) == [
        "gamma", "alpha", "beta", "eps", "delta"]  # FAILED < FINISHED < KILLED < RUNNING


def test_order_by_tag(corpus):
    runs = search(corpus, order_by=["tags.grp DESC", "attributes.start_time DESC"])
    assert names(corpus, runs) == ["beta", "gamma", "alpha", "eps", "delta"]


def test_run_view_types(corpus):
    assert "zeta" not in found(corpus, "")
    assert found(corpus, "", run_view_type=ViewType.DELETED_ONLY) == {"zeta"}
    assert found(corpus, "", run_view_type=ViewType.ALL) == {"alpha", "beta", "gamma", "delta", "eps", "zeta"}
    assert found(corpus, "metrics.rmse < 0.15", run_view_type=ViewType.ALL) == {"zeta"}


def test_search_result_carries_run_data(corpus):
    (run,) = search(corpus, "attributes.run_name = 'alpha-x1'")
    assert run.data.metrics == {"rmse": 0.5, "acc": 0.9}
    assert run.data.params == {"model": "gbm"}
    assert run.data.tags["grp"] == "g1"
    assert run.info.status == "FINISHED" and run.info.start_time == T0 + 1


def test_fluent_search_runs_dataframe(corpus):
    df = mlflow.search_runs(
        experiment_ids=[corpus["exp"]],
        filter_string="params.model = 'gbm'",
        order_by=["metrics.rmse ASC"],
    )
    assert list(df["run_id"]) == [corpus["ids"]["alpha"], corpus["ids"]["beta"]]
    assert list(df["metrics.rmse"]) == [0.5, 1.5]
    assert list(df["params.model"]) == ["gbm", "gbm"]
    assert list(df["tags.mlflow.runName"]) == ["alpha-x1", "beta-x2"]
    assert list(df["status"]) == ["FINISHED", "FINISHED"]

    df = mlflow.search_runs(experiment_ids=[corpus["exp"]], run_view_type=ViewType.ALL)
    assert len(df) == 6


def test_fluent_search_runs_list_output(corpus):
    runs = mlflow.search_runs(
        experiment_ids=[corpus["exp"]], filter_string="metrics.rmse > 0.6", output_format="list"
    )
    assert {r.info.run_name for r in runs} == {"beta-x2", "gamma"}


@pytest.mark.parametrize(
    "flt",
    [
        "metrics.x <<< 1",
        "a or b",
        "metrics.rmse < 1 or params.model = 'gbm'",
        "metrics.rmse < 1 OR metrics.rmse > 2",
        "(metrics.rmse < 1)",
        "metrics.rmse < 'abc'",
        "params.model < 'gbm'",
        "nosuchentity.x = 1",
        "params.model = gbm",
        "attributes.run_id IN 'abc'",
        "metrics.rmse < '0.5'",
        "tags.grp IN ('g1')",
        "params.model IN ('gbm')",
        "attributes.end_time IS NULL",
    ],
)
def test_invalid_filter_is_400(corpus, server, flt):
    r = api_post(server, "runs/search", {"experiment_ids": [corpus["exp"]], "filter": flt})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as ei:
        search(corpus, flt)
    assert ei.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("order", ["metrics.rmse SIDEWAYS", "nosuch.x ASC", "metrics.rmse ASC DESC"])
def test_invalid_order_by_is_400(corpus, server, order):
    r = api_post(server, "runs/search", {"experiment_ids": [corpus["exp"]], "order_by": [order]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_bad_page_token_is_400(corpus, server):
    r = api_post(server, "runs/search", {"experiment_ids": [corpus["exp"]], "page_token": "!!not-a-token!!"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_search_unknown_experiment_returns_nothing_or_404(server):
    r = api_post(server, "runs/search", {"experiment_ids": ["99999999"]})
    if r.status_code == 200:
        assert r.json().get("runs", []) == []
    else:
        assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.fixture(scope="module")
def many_runs(server):
    c = mlflow.MlflowClient(server.url)
    exp = c.create_experiment(unique("paging"))
    ids = []
    for i in range(25):
        # several runs share a start_time so the tie-break (run_id) matters for stable paging
        run = c.create_run(exp, start_time=T0 + i // 3, run_name=f"p{i:02d}")
        c.log_metric(run.info.run_id, "score", float(i % 7), timestamp=T0, step=0)
        ids.append(run.info.run_id)
    return c, exp, ids


@pytest.mark.parametrize("order_by", [None, ["metrics.score DESC"], ["attributes.run_name ASC"]])
@pytest.mark.parametrize("page_size", [7, 10])
def test_paging_no_duplicates_no_gaps(many_runs, order_by, page_size):
    c, exp, ids = many_runs
    full = [r.info.run_id for r in c.search_runs([exp], order_by=order_by, max_results=1000)]
    assert sorted(full) == sorted(ids)
    got, token, pages = [], None, 0
    while True:
        page = c.search_runs([exp], order_by=order_by, max_results=page_size, page_token=token)
        assert len(page) <= page_size
        got.extend(r.info.run_id for r in page)
        pages += 1
        token = page.token
        if not token:
            break
        assert pages <= 10
    assert got == full, "paged results must equal the unpaged order, without duplicates or gaps"
    assert pages == -(-25 // page_size)


def test_fluent_search_pages_through_everything(many_runs):
    _, exp, ids = many_runs
    df = mlflow.search_runs(experiment_ids=[exp], max_results=25)
    assert sorted(df["run_id"]) == sorted(ids)


def test_search_across_experiments(many_runs, corpus):
    c, exp, ids = many_runs
    runs = c.search_runs([exp, corpus["exp"]], max_results=1000)
    assert len(runs) == 25 + 5
