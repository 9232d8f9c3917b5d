"""scikit-learn references for crates/linear/tests/real_data.rs (and crates/mlp).

Same preparation as the Rust tests: the README split of the repository's datasets/ (computed on the
full file), numeric feature columns only, rows with a missing value in a used column dropped
from each part, columns standardised with the train part's mean and population std.

Run from the repository root:  /tmp/linvenv/bin/python crates/linear/tests/real_data.py
"""
import os
import sys

import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.neural_network import MLPRegressor

DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../datasets")
M = (1 << 64) - 1


def key(i):
    z = (i + 0x9E3779B97F4A7C15) & M
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)


def split(target, stratify):
    n = len(target)
    test = np.zeros(n, dtype=bool)
    groups = {}
    for i in range(n):
        groups.setdefault(target[i] if stratify else 0, []).append(i)
    for rows in groups.values():
        rows.sort(key=key)
        test[rows[: (len(rows) + 4) // 5]] = True
    return ~test, test


def prepare(file, target, features, stratify):
    df = pd.read_csv(f"{DATA}/{file}", keep_default_na=False, na_values=[""])
    train, test = split(df[target].astype(str).tolist(), stratify)
    ok = df[features + [target]].notna().all(axis=1).to_numpy()
    tr, te = df[train & ok], df[test & ok]
    mu, sd = tr[features].mean(), tr[features].std(ddof=0)
    return ((tr[features] - mu) / sd).to_numpy(), tr[target].to_numpy(), ((te[features] - mu) / sd).to_numpy(), te[target].to_numpy()


print(f"scikit-learn {sklearn.__version__}")
cal = ["longitude", "latitude", "housing_median_age", "total_rooms", "total_bedrooms", "population", "households", "median_income"]
Xtr, ytr, Xte, yte = prepare("california_housing.csv", "median_house_value", cal, False)
print(f"california: train {len(ytr)} test {len(yte)}")
print(f"  Ridge() R2 = {r2_score(yte, Ridge().fit(Xtr, ytr).predict(Xte)):.6f}")
mlp = MLPRegressor(hidden_layer_sizes=(64, 32), early_stopping=True, random_state=0, max_iter=500)
sd = ytr.std()
mlp.fit(Xtr, (ytr - ytr.mean()) / sd)
print(f"  MLPRegressor((64,32), early_stopping) R2 = {r2_score(yte, mlp.predict(Xte) * sd + ytr.mean()):.6f}")

pen = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"]
Xtr, ytr, Xte, yte = prepare("penguins.csv", "species", pen, True)
print(f"penguins: train {len(ytr)} test {len(yte)}")
m = LogisticRegression().fit(Xtr, ytr)
print(f"  LogisticRegression() accuracy = {accuracy_score(yte, m.predict(Xte)):.6f}")
