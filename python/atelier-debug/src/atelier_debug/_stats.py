"""Tensor statistics in numpy.

Computed in the array's own precision (float32 stays float32, float64 stays float64; half
precision and integers are widened), with as few passes and temporaries as possible: the
squared norm is one BLAS dot, the variance comes from the same sums unless the mean dominates
(then a second, centred pass), and the only full-size temporary, ``|x|``, goes into a scratch
buffer the caller reuses. When a float32 reduction overflows although every element is finite,
the statistics are recomputed in float64. NaN and Inf propagate: a NaN element makes the norm,
mean_abs, std, min, max and max_abs NaN; ``nonfinite`` counts the NaN/Inf elements.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, NamedTuple

import numpy as np


class TensorStats(NamedTuple):
    norm: float  # L2 norm
    mean: float
    mean_abs: float
    std: float  # population std (ddof=0)
    min: float
    max: float
    max_abs: float
    zero_fraction: float  # exact zeros / size
    nonfinite: int  # count of NaN, +inf, -inf
    size: int


_FAST = (np.dtype(np.float32), np.dtype(np.float64))


def to_numpy(x: Any) -> np.ndarray:
    """A flat float32/float64 ndarray for a numpy array, scalar, list or torch tensor.

    It may share memory with ``x`` (no copy when ``x`` already is a float32/float64 array).
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        t = x.detach()
        if getattr(t, "is_sparse", False):
            t = t.to_dense()
        if str(t.dtype) not in ("torch.float32", "torch.float64"):
            t = t.float()
        x = t.cpu().numpy()
    a = np.asarray(x)
    if a.dtype not in _FAST:
        a = a.astype(np.float64 if a.dtype.itemsize > 4 or a.dtype.kind in "iub" else np.float32)
    return a.reshape(-1)


class Scratch:
    """A reusable work buffer per dtype, so the statistics allocate no full-size arrays."""

    def __init__(self) -> None:
        self._bufs: dict[np.dtype, np.ndarray] = {}

    def get(self, n: int, dtype: np.dtype) -> np.ndarray:
        buf = self._bufs.get(dtype)
        if buf is None or buf.size < n:
            buf = self._bufs[dtype] = np.empty(n, dtype=dtype)
        return buf[:n]


def tensor_stats(a: np.ndarray, scratch: Scratch | None = None) -> TensorStats:
    """Statistics of a flat float32/float64 array of size > 0."""
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        return _tensor_stats(a, scratch or Scratch())


def _tensor_stats(a: np.ndarray, scratch: Scratch) -> TensorStats:
    n = a.size
    sumsq = float(np.dot(a, a))
    total = float(a.sum())
    lo = float(a.min())
    hi = float(a.max())
    absa = np.abs(a, out=scratch.get(n, a.dtype))
    sum_abs = float(absa.sum())
    zeros = int(np.count_nonzero(a == 0))
    if not (math.isfinite(sumsq) and math.isfinite(sum_abs)):
        nonfinite = int(n - np.count_nonzero(np.isfinite(a)))
        if nonfinite == 0:
            return _exact_stats(a)  # a reduction overflowed, the data is finite
        max_abs = math.nan if (lo != lo or hi != hi) else max(-lo, hi)
        return TensorStats(math.sqrt(sumsq), total / n, sum_abs / n, math.nan, lo, hi, max_abs, zeros / n,
                           nonfinite, n)
    mean = total / n
    meansq = sumsq / n
    if mean * mean <= 0.5 * meansq:
        var = meansq - mean * mean  # cancellation bounded: var >= meansq / 2
    else:
        d = np.subtract(a, a.dtype.type(mean), out=scratch.get(n, a.dtype))
        var = float(np.dot(d, d)) / n
    std = math.sqrt(max(var, 0.0))
    return TensorStats(math.sqrt(sumsq), mean, sum_abs / n, std, lo, hi, max(-lo, hi), zeros / n, 0, n)


def _exact_stats(a: np.ndarray) -> TensorStats:
    """float64 with scaling by max|x|: finite data whose squares or sums overflow."""
    a = a.astype(np.float64)
    n = a.size
    lo, hi = float(a.min()), float(a.max())
    max_abs = max(-lo, hi)
    s = a / max_abs
    norm = float(np.linalg.norm(s)) * max_abs
    std = float(np.std(s)) * max_abs
    return TensorStats(norm, float(s.mean()) * max_abs, float(np.abs(s).mean()) * max_abs, std, lo, hi, max_abs,
                       float(n - np.count_nonzero(a)) / n, 0, n)


def diff_norm(a: np.ndarray, prev: np.ndarray, scratch: Scratch | None = None) -> float:
    """||a - prev|| (same shape and dtype), through the scratch buffer."""
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        buf = scratch.get(a.size, a.dtype) if scratch is not None else None
        d = np.subtract(a, prev, out=buf)
        sq = float(np.dot(d, d))
        if math.isinf(sq) and np.isfinite(d).all():
            return float(np.linalg.norm(d.astype(np.float64) / np.abs(d).max())) * float(np.abs(d).max())
        return math.sqrt(sq)


def norm_only(a: np.ndarray) -> float:
    """||a||, for layers that only count towards the global gradient norm."""
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        sq = float(np.dot(a, a))
        if math.isinf(sq) and np.isfinite(a).all():
            return _exact_stats(a).norm
        return math.sqrt(sq)


def combine(parts: list[TensorStats]) -> TensorStats:
    """The statistics of the concatenation of several tensors, from theirs (exact: sums add, the
    variance by the parallel-variance formula). Used for a module's weight + bias."""
    if len(parts) == 1:
        return parts[0]
    n = sum(p.size for p in parts)
    nonfinite = sum(p.nonfinite for p in parts)
    lows, highs = [p.min for p in parts], [p.max for p in parts]
    lo = math.nan if any(x != x for x in lows) else min(lows)
    hi = math.nan if any(x != x for x in highs) else max(highs)
    max_abs = math.nan if (lo != lo or hi != hi) else max(-lo, hi)
    mean = sum(p.mean * p.size for p in parts) / n
    if nonfinite:
        std = math.nan
    else:
        m2 = sum(p.size * (p.std * p.std + (p.mean - mean) ** 2) for p in parts)
        std = math.sqrt(m2 / n)
    return TensorStats(
        global_norm(p.norm for p in parts),
        mean,
        sum(p.mean_abs * p.size for p in parts) / n,
        std,
        lo,
        hi,
        max_abs,
        sum(p.zero_fraction * p.size for p in parts) / n,
        nonfinite,
        n,
    )


def global_norm(norms: Iterable[float]) -> float:
    """sqrt(sum of squares) of norms: NaN if any is NaN, else inf if any is inf; no overflow."""
    norms = list(norms)
    if any(n != n for n in norms):
        return math.nan
    return math.hypot(*norms) if len(norms) != 1 else abs(norms[0])
