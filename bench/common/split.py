"""The train/test split of datasets/README.md, and the target as every tool reads it, for the
Python side of the benchmarks.

A splitmix64 key per 0-based data row; classification is stratified by the target as written,
regression is not; the first ceil(20 %) of each group by key is the test part. The same rule as
crates/tabular/src/split.rs, so every tool in a benchmark scores the same rows.
"""
import numpy as np

MASK = (1 << 64) - 1


def splitmix64(i):
    z = (i + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_mask(labels, task):
    """A boolean mask over the rows: True for the test part."""
    n = len(labels)
    groups = {}
    if task == "regression":
        groups[""] = list(range(n))
    else:
        for i, label in enumerate(labels):
            groups.setdefault(label, []).append(i)
    test = np.zeros(n, dtype=bool)
    for rows in groups.values():
        rows = sorted(rows, key=splitmix64)
        test[rows[: (len(rows) + 4) // 5]] = True
    return test


def encode_target(labels, task):
    """(y, classes): regression targets as floats (no classes); class labels as their index in
    the sorted classes, so every tool and every score agree on the order."""
    if task == "regression":
        return labels.astype(float).to_numpy(), []
    classes = sorted(labels.unique())
    index = {c: i for i, c in enumerate(classes)}
    return labels.map(index).to_numpy(dtype=int), classes
