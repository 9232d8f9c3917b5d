"""`atelier clarify bias` against an independent numpy/pandas implementation of the
bias metrics as SageMaker Clarify's documentation defines them
(docs.aws.amazon.com/sagemaker/latest/dg/clarify-measure-data-bias.html and
clarify-measure-post-training-bias.html), on the shared datasets.

Conventions taken from Clarify (its open-source library smclarify, which its
processing container runs), stated here so the reference below stays a
reading of the formulas, not of Atelier's code:
  * facet d = the sensitive group, a = every other row; label and predicted
    label collapsed to positive / negative;
  * a ratio 0/0 is 0 and x/0 is +inf (written "Infinity"); a difference of
    two +inf is 0;
  * KL, JS, LP (p = 2), TVD and KS compare the facets' distributions of the
    binary label over the label values present in both facets;
  * FT: k-NN (k = 5, or 1 when facet a has at most 9 rows; Euclidean, ties in
    distance to the earlier row) fitted on facet a with the model's
    predictions; FT = (#{model 1, kNN 0} - #{model 0, kNN 1}) / n_d, which is
    smclarify's sign (the documentation's F+/F- wording reads the other way);
  * GE with alpha = 2 and benefit b = yhat - y + 1;
  * predicted label positive when the model's probability of the positive
    label exceeds 0.5 (ModelPredictedLabelConfig's probability_threshold).

    ATELIER_BIN=target/debug/atelier .venv/bin/python -m pytest tests/python/test_clarify.py -q
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO_ROOT, atelier_bin

DATA = REPO_ROOT / "datasets"
TOL = 1e-9

PRE = ["CDDL", "CI", "DPL", "JS", "KL", "KS", "LP", "TVD"]
POST = ["AD", "CDDPL", "DAR", "DCA", "DCR", "DI", "DPPL", "DRR", "FT", "GE", "RD", "SD", "TE"]


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [str(atelier_bin()), *args], capture_output=True, text=True, timeout=600
    )
    if ok:
        assert p.returncode == 0, p.stderr
    return p


# ----------------------------------------------------------------- reference


def div(a: float, b: float) -> float:
    if b == 0:
        return 0.0 if a == 0 else math.copysign(math.inf, a)
    return a / b


def minus(x: float, y: float) -> float:
    return 0.0 if x == y == math.inf else x - y


def label_distributions(d: np.ndarray, y: np.ndarray):
    """P_a and P_d of the binary label, over values present in both facets."""
    pa, pd_ = [], []
    for value in (False, True):
        ca = np.sum(~d & (y == value))
        cd = np.sum(d & (y == value))
        if ca > 0 and cd > 0:
            pa.append(ca / np.sum(~d))
            pd_.append(cd / np.sum(d))
    return np.array(pa), np.array(pd_)


def cdd(d: np.ndarray, y: np.ndarray, group: np.ndarray | None) -> float | None:
    """CDD = (1/n) sum_i n_i DD_i, DD = n_d(0)/n(0) - n_d(1)/n(1) per group."""
    if group is None:
        return None
    total = 0.0
    for g in pd.unique(group):
        in_g = group == g
        rejected = np.sum(in_g & ~y)
        accepted = np.sum(in_g & y)
        dd = (np.sum(in_g & ~y & d) / rejected if rejected else 0.0) - (
            np.sum(in_g & y & d) / accepted if accepted else 0.0
        )
        total += np.sum(in_g) * dd
    return total / len(y)


def pre_training(d: np.ndarray, y: np.ndarray, group) -> dict:
    na, nd = np.sum(~d), np.sum(d)
    pa, pdd = label_distributions(d, y)
    m = (pa + pdd) / 2
    return {
        "CI": (na - nd) / (na + nd),
        "DPL": np.sum(y & ~d) / na - np.sum(y & d) / nd,
        "KL": float(np.sum(pa * np.log(pa / pdd))),
        "JS": 0.5 * float(np.sum(pa * np.log(pa / m)) + np.sum(pdd * np.log(pdd / m))),
        "LP": float(np.sqrt(np.sum((pa - pdd) ** 2))),
        "TVD": 0.5 * float(np.sum(np.abs(pa - pdd))),
        "KS": float(np.max(np.abs(pa - pdd))),
        "CDDL": cdd(d, y, group),
    }


def knn_flip_test(d: np.ndarray, yhat: np.ndarray, x: np.ndarray | None) -> float | None:
    if x is None:
        return None
    xa, xd = x[~d], x[d]
    ya, yd = yhat[~d], yhat[d]
    k = 5 if len(xa) > 9 else 1
    knn = np.empty(len(xd), dtype=bool)
    for start in range(0, len(xd), 256):
        block = xd[start : start + 256]
        dist = np.zeros((len(block), len(xa)))
        for c in range(x.shape[1]):
            dist += (block[:, c : c + 1] - xa[None, :, c]) ** 2
        kth = np.partition(dist, k - 1, axis=1)[:, k - 1]
        for r in range(len(block)):
            cand = np.flatnonzero(dist[r] <= kth[r])
            nearest = cand[np.lexsort((cand, dist[r, cand]))][:k]
            knn[start + r] = 2 * np.sum(ya[nearest]) > k
    f_plus = np.sum(yd & ~knn)
    f_minus = np.sum(~yd & knn)
    return (f_plus - f_minus) / len(xd)


def post_training(d: np.ndarray, y: np.ndarray, yhat: np.ndarray, group, x) -> dict:
    def counts(side):
        return (
            np.sum(side & y & yhat),  # TP
            np.sum(side & ~y & yhat),  # FP
            np.sum(side & y & ~yhat),  # FN
            np.sum(side & ~y & ~yhat),  # TN
        )

    tpa, fpa, fna, tna = counts(~d)
    tpd, fpd, fnd, tnd = counts(d)
    na, nd = np.sum(~d), np.sum(d)
    qa, qd = (tpa + fpa) / na, (tpd + fpd) / nd
    benefit = yhat.astype(float) - y.astype(float) + 1
    mean_b = benefit.mean()
    return {
        "DPPL": qa - qd,
        "DI": div(qd, qa),
        # c = n(1) / nhat(1); DCAcc = c_a - c_d
        "DCA": minus(div(tpa + fna, tpa + fpa), div(tpd + fnd, tpd + fpd)),
        # r = n(0) / nhat(0); DCR = r_d - r_a
        "DCR": minus(div(tnd + fpd, tnd + fnd), div(tna + fpa, tna + fna)),
        "DAR": minus(div(tpa, tpa + fpa), div(tpd, tpd + fpd)),
        "DRR": minus(div(tnd, tnd + fnd), div(tna, tna + fna)),
        "AD": (tpa + tna) / na - (tpd + tnd) / nd,
        "RD": minus(div(tpa, tpa + fna), div(tpd, tpd + fnd)),
        "SD": minus(div(tnd, tnd + fpd), div(tna, tna + fpa)),
        "TE": minus(div(fnd, fpd), div(fna, fpa)),
        "GE": float(np.sum((benefit / mean_b) ** 2 - 1) / (2 * len(y))),
        "CDDPL": cdd(d, yhat, group),
        "FT": knn_flip_test(d, yhat, x),
    }


# ------------------------------------------------------------------ checking


def metrics_of(stage: dict, facet: str, index: int = 0) -> dict:
    return {m["name"]: m for m in stage["facets"][facet][index]["metrics"]}


def assert_matches(got: dict, want: dict, names: list[str]) -> None:
    assert sorted(got) == sorted(names)
    assert list(got) == names, "metrics are listed by name, as Clarify's report"
    for name in names:
        m = got[name]
        assert m["description"].endswith(f"({name})"), m
        w = want[name]
        if w is None:
            assert m["value"] is None and m["error"], (name, m)
        elif math.isinf(w):
            assert m["value"] == ("Infinity" if w > 0 else "-Infinity"), (name, m)
        else:
            assert isinstance(m["value"], float | int), (name, m)
            assert abs(m["value"] - w) <= TOL, (name, m["value"], w)


def numeric_features(df: pd.DataFrame, drop: list[str]) -> np.ndarray | None:
    x = df.drop(columns=drop)
    if any(not pd.api.types.is_numeric_dtype(t) for t in x.dtypes) or x.isna().any().any():
        return None
    return x.to_numpy(dtype=float)


def predictions(model: Path, data: Path, tmp: Path, positive: str) -> np.ndarray:
    out = tmp / "pred.csv"
    run("predict", str(model), str(data), "--output", str(out))
    p = pd.read_csv(out, dtype={"predicted_label": str})
    return p[f"probability_{positive}"].to_numpy() > 0.5


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    return pd.read_csv(DATA / "adult.csv")


def test_adult_pre_training_every_metric(adult, tmp_path):
    out = tmp_path / "out"
    p = run(
        "clarify", "bias", str(DATA / "adult.csv"), "--target", "income",
        "--label-values", ">50K", "--facet", "sex", "--facet-values", "Female",
        "--group", "race", "--output", str(out),
    )
    report = json.loads((out / "analysis.json").read_text())
    assert report["version"] == "1.0"
    assert "post_training_bias_metrics" not in report
    pre = report["pre_training_bias_metrics"]
    assert pre["label"] == "income"
    assert pre["label_value_or_threshold"] == ">50K"
    assert [f["value_or_threshold"] for f in pre["facets"]["sex"]] == ["Female"]
    d = (adult["sex"] == "Female").to_numpy()
    y = (adult["income"] == ">50K").to_numpy()
    want = pre_training(d, y, adult["race"].to_numpy())
    assert_matches(metrics_of(pre, "sex"), want, PRE)
    # the table names every metric
    for name in PRE:
        assert f"  {name} " in p.stdout, p.stdout


def test_adult_each_value_and_threshold_facets(adult, tmp_path):
    # no --facet-values: every value against the rest; no --group: CDDL undefined
    out = tmp_path / "a"
    run("clarify", "bias", str(DATA / "adult.csv"), "--target", "income",
        "--label-values", ">50K", "--facet", "race", "--output", str(out))
    pre = json.loads((out / "analysis.json").read_text())["pre_training_bias_metrics"]
    values = [f["value_or_threshold"] for f in pre["facets"]["race"]]
    assert values == list(pd.unique(adult["race"]))
    y = (adult["income"] == ">50K").to_numpy()
    for i, v in enumerate(values):
        want = pre_training((adult["race"] == v).to_numpy(), y, None)
        assert_matches(metrics_of(pre, "race", i), want, PRE)
    # a numeric facet above a threshold, and a numeric label above one
    out = tmp_path / "b"
    run("clarify", "bias", str(DATA / "adult.csv"), "--target", "hours_per_week",
        "--label-threshold", "40", "--facet", "age", "--facet-threshold", "40",
        "--group", "sex", "--output", str(out))
    pre = json.loads((out / "analysis.json").read_text())["pre_training_bias_metrics"]
    assert pre["label_value_or_threshold"] == f"(40.0, {float(adult['hours_per_week'].max())}]"
    assert pre["facets"]["age"][0]["value_or_threshold"] == f"(40.0, {float(adult['age'].max())}]"
    want = pre_training(
        (adult["age"] > 40).to_numpy(), (adult["hours_per_week"] > 40).to_numpy(),
        adult["sex"].to_numpy(),
    )
    assert_matches(metrics_of(pre, "age"), want, PRE)


def test_adult_with_a_trained_model_every_metric(adult, tmp_path):
    model = tmp_path / "adult.model"
    run("train", str(DATA / "adult.csv"), "--target", "income", "--output", str(model))
    out = tmp_path / "out"
    run("clarify", "bias", str(DATA / "adult.csv"), "--target", "income",
        "--label-values", ">50K", "--facet", "sex", "--facet-values", "Female",
        "--group", "race", "--model", str(model), "--output", str(out))
    report = json.loads((out / "analysis.json").read_text())
    d = (adult["sex"] == "Female").to_numpy()
    y = (adult["income"] == ">50K").to_numpy()
    yhat = predictions(model, DATA / "adult.csv", tmp_path, ">50K")
    assert 0 < yhat.sum() < len(yhat)
    group = adult["race"].to_numpy()
    post = report["post_training_bias_metrics"]
    assert post["label"] == "income" and post["label_value_or_threshold"] == ">50K"
    # adult has text features: FT is undefined, as in Clarify
    want = post_training(d, y, yhat, group, numeric_features(adult, ["sex", "income"]))
    assert want["FT"] is None
    got = metrics_of(post, "sex")
    assert_matches(got, want, POST)
    assert "non-numeric" in got["FT"]["error"]
    assert_matches(metrics_of(report["pre_training_bias_metrics"], "sex"),
                   pre_training(d, y, group), PRE)


def test_flip_test_on_numeric_adult(adult, tmp_path):
    cols = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss",
            "hours_per_week", "sex", "income"]
    data = tmp_path / "adult_numeric.csv"
    adult[cols].to_csv(data, index=False)
    model = tmp_path / "m.model"
    run("train", str(data), "--target", "income", "--output", str(model))
    out = tmp_path / "out"
    run("clarify", "bias", str(data), "--target", "income", "--label-values", ">50K",
        "--facet", "sex", "--facet-values", "Female", "--model", str(model),
        "--output", str(out))
    post = json.loads((out / "analysis.json").read_text())["post_training_bias_metrics"]
    d = (adult["sex"] == "Female").to_numpy()
    y = (adult["income"] == ">50K").to_numpy()
    yhat = predictions(model, data, tmp_path, ">50K")
    x = numeric_features(adult[cols], ["sex", "income"])
    want = post_training(d, y, yhat, None, x)
    assert want["FT"] != 0
    assert_matches(metrics_of(post, "sex"), want, POST)
    # scikit-learn's k-NN (what smclarify calls) breaks distance ties its own
    # way; on this data it must land within a few rows of ours.
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=5).fit(x[~d], yhat[~d])
    k = knn.predict(x[d])
    ft_sklearn = (np.sum(yhat[d] & ~k) - np.sum(~yhat[d] & k)) / d.sum()
    assert abs(metrics_of(post, "sex")["FT"]["value"] - ft_sklearn) < 2e-3


def test_titanic_with_and_without_a_model(tmp_path):
    titanic = pd.read_csv(DATA / "titanic.csv")
    out = tmp_path / "pre"
    run("clarify", "bias", str(DATA / "titanic.csv"), "--target", "Survived",
        "--facet", "Sex", "--facet-values", "female", "--group", "Pclass",
        "--output", str(out))
    pre = json.loads((out / "analysis.json").read_text())["pre_training_bias_metrics"]
    assert pre["label_value_or_threshold"] == "1"  # a 0/1 target defaults to 1
    d = (titanic["Sex"] == "female").to_numpy()
    y = (titanic["Survived"] == 1).to_numpy()
    group = titanic["Pclass"].to_numpy()
    assert_matches(metrics_of(pre, "Sex"), pre_training(d, y, group), PRE)

    model = tmp_path / "t.model"
    run("train", str(DATA / "titanic.csv"), "--target", "Survived", "--output", str(model))
    out = tmp_path / "post"
    run("clarify", "bias", str(DATA / "titanic.csv"), "--target", "Survived",
        "--label-values", "1", "--facet", "Sex", "--facet-values", "female",
        "--group", "Pclass", "--model", str(model), "--output", str(out))
    report = json.loads((out / "analysis.json").read_text())
    yhat = predictions(model, DATA / "titanic.csv", tmp_path, "1")
    want = post_training(d, y, yhat, group, numeric_features(titanic, ["Sex", "Survived"]))
    assert_matches(metrics_of(report["post_training_bias_metrics"], "Sex"), want, POST)
    assert_matches(metrics_of(report["pre_training_bias_metrics"], "Sex"),
                   pre_training(d, y, group), PRE)


def test_undefined_and_infinite_values_as_clarify_writes_them(tmp_path):
    # d = rows with f = 1; with a few rows some ratios divide by zero
    df = pd.DataFrame({
        "f": [1, 1, 1, 0, 0, 0, 0],
        "x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "y": [1, 1, 0, 1, 1, 0, 0],
    })
    data = tmp_path / "tiny.csv"
    df.to_csv(data, index=False)
    # a "model": a regression whose prediction is > 0.5 exactly where we want
    model = tmp_path / "m.model"
    run("train", str(data), "--target", "y", "--problem-type", "regression",
        "--param", "min_data_in_leaf=1", "--output", str(model))
    out = tmp_path / "out"
    p = run("clarify", "bias", str(data), "--target", "y", "--label-threshold", "0.5",
            "--facet", "f", "--facet-values", "1", "--model", str(model),
            "--output", str(out))
    report = json.loads((out / "analysis.json").read_text())
    run("predict", str(model), str(data), "--output", str(tmp_path / "p.csv"))
    yhat = pd.read_csv(tmp_path / "p.csv")["predicted_label"].to_numpy() > 0.5
    d = (df["f"] == 1).to_numpy()
    y = (df["y"] > 0.5).to_numpy()
    want = post_training(d, y, yhat, None, numeric_features(df, ["f", "y"]))
    got = metrics_of(report["post_training_bias_metrics"], "f")
    assert_matches(got, want, POST)
    assert got["CDDPL"]["value"] is None and "Group" in got["CDDPL"]["error"]
    # this data exercises Clarify's infinities (DCR, TE here)
    assert {"Infinity", "-Infinity"} & {m["value"] for m in got.values() if isinstance(m["value"], str)}
    assert "undefined" in p.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--facet", "gender", "--label-values", ">50K"], "no column 'gender'"),
        (["--facet", "sex", "--facet-values", "female", "--label-values", ">50K"],
         "has no value 'female'"),
        (["--facet", "sex", "--facet-values", "Female"], "which values of 'income'"),
        (["--facet", "sex", "--label-values", "yes"], "has no value 'yes'"),
        (["--facet", "age", "--facet-threshold", "120", "--label-values", ">50K"],
         "would be empty"),
        (["--facet", "sex", "--facet-threshold", "1", "--label-values", ">50K"],
         "not numeric"),
        (["--facet", "sex", "--label-values", ">50K", "--group", "nope"], "no column 'nope'"),
        (["--facet", "sex", "--facet-values", "Female,Male", "--label-values", ">50K"],
         "facet a) would be empty"),
    ],
)
def test_clear_errors(args, message, tmp_path):
    p = run("clarify", "bias", str(DATA / "adult.csv"), "--target", "income", *args,
            "--output", str(tmp_path / "o"), ok=False)
    assert p.returncode != 0
    assert message in p.stderr, p.stderr
    assert "panicked" not in p.stderr
    assert not (tmp_path / "o" / "analysis.json").exists()
