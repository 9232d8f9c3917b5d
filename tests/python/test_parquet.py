"""Parquet as pandas and pyarrow write it, through the CLI: the same data as CSV or as Parquet
(several row groups, zstd, a pandas categorical) profiles to the same kinds and counts and trains
the same model; batch transform's Parquet output reads back in pyarrow with one prediction per
input row, equal to the CSV path's.
"""

from __future__ import annotations

import csv
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import REPO_ROOT, run_cli

TITANIC = REPO_ROOT / "datasets" / "titanic.csv"


@pytest.fixture(scope="module")
def parquet_copy(tmp_path_factory):
    d = tmp_path_factory.mktemp("parquet")
    df = pd.read_csv(TITANIC)
    df["Embarked"] = df["Embarked"].astype("category")  # a dictionary column
    p = d / "titanic.parquet"
    df.to_parquet(p, engine="pyarrow", row_group_size=200, compression="zstd", index=False)
    assert pq.ParquetFile(p).metadata.num_row_groups == 5
    return p


def _ok(args):
    r = run_cli(args, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_parquet_and_csv_profile_alike(parquet_copy):
    a = json.loads(_ok(["profile", str(TITANIC), "--json"]).stdout)
    b = json.loads(_ok(["profile", str(parquet_copy), "--json"]).stdout)
    assert a["rows"] == b["rows"] == 891
    for ca, cb in zip(a["columns"], b["columns"], strict=True):
        assert (ca["name"], ca["kind"], ca["count"], ca["missing"]) == (cb["name"], cb["kind"], cb["count"], cb["missing"])


def test_parquet_trains_the_model_csv_trains_and_batch_output_reads_in_pyarrow(parquet_copy, tmp_path):
    _ok(["train", str(parquet_copy), "--target", "Survived", "-o", str(tmp_path / "pq.model")])
    _ok(["train", str(TITANIC), "--target", "Survived", "-o", str(tmp_path / "csv.model")])
    _ok(["predict", str(tmp_path / "pq.model"), str(TITANIC), "-o", str(tmp_path / "pq.csv")])
    _ok(["predict", str(tmp_path / "csv.model"), str(TITANIC), "-o", str(tmp_path / "csv.csv")])
    assert (tmp_path / "pq.csv").read_text() == (tmp_path / "csv.csv").read_text()

    out = tmp_path / "out"
    _ok(["batch-transform", str(tmp_path / "pq.model"), str(parquet_copy), "--output", str(out), "--join-input"])
    table = pq.read_table(out / "titanic.out.parquet")
    assert table.num_rows == 891
    df = table.to_pandas()
    assert list(df["PassengerId"]) == list(range(1, 892))
    with open(tmp_path / "csv.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [str(v) for v in df["predicted_label"]] == [r["predicted_label"] for r in rows]
    assert df["probability_1"].tolist() == pytest.approx([float(r["probability_1"]) for r in rows], abs=1e-12)
