"""The PyTorch path of StepLogger.log_torch. Imported lazily: importing it imports torch.

- CPU tensors are read as numpy views (no copy for float32/float64) and go through the numpy
  statistics, which cost less per tensor than a dozen torch dispatches.
- Tensors on other devices (CUDA, MPS, ...) are reduced where they live by a handful of fused
  reductions (aminmax, var_mean, L1 norm, count_nonzero); the small per-tensor vectors of one
  device go to the host in one transfer. Only a tensor whose vector shows NaN/Inf (or a float32
  overflow) is then copied to the host and recomputed exactly, which costs nothing in a healthy
  step.
- The tensors of one module (weight, bias) are combined on the host, exactly.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._stats import TensorStats, combine, diff_norm, global_norm, norm_only, tensor_stats

if TYPE_CHECKING:  # pragma: no cover
    from .logger import StepLogger

# Read CPU tensors through numpy. The tests switch this off to run the device path on CPU.
CPU_VIA_NUMPY = True

# device row: var, mean, min, max, sum_abs, nonzero, update sumsq (NaN: none)
_VAR, _MEAN, _MIN, _MAX, _SUM_ABS, _NONZERO, _UPD = range(7)


def group_parameters(model: Any, by: str) -> list[tuple[str, list[torch.Tensor]]]:
    """``[(layer name, [parameters])]`` in ``named_parameters()`` order.

    ``by="module"``: the owning module's name (``fc1.weight`` -> ``fc1``); a parameter registered
    on the model itself (``temperature``, or ``weight`` of a bare ``nn.Linear``) is its own layer.
    """
    groups: dict[str, list[torch.Tensor]] = {}
    for name, p in model.named_parameters():
        layer = name if by == "parameter" else (name.rpartition(".")[0] or name)
        groups.setdefault(layer, []).append(p)
    return list(groups.items())


def _flat(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    if t.is_sparse:
        t = t.to_dense()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    return t.reshape(-1)


def _on_host(t: torch.Tensor) -> bool:
    return CPU_VIA_NUMPY and t.device.type == "cpu"


class _DeviceRows:
    """Per-tensor reduction vectors, queued per device, fetched in one transfer per device."""

    def __init__(self) -> None:
        self.rows: dict[Any, list[torch.Tensor]] = defaultdict(list)
        self.sources: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        self.where: list[tuple[Any, int]] = []
        self._nan: dict[tuple[Any, torch.dtype], torch.Tensor] = {}
        self.host: list[TensorStats | None] = []
        self.updates: list[float | None] = []

    def add(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> int:
        var, mean = torch.var_mean(x, correction=0)
        lo, hi = torch.aminmax(x)
        if prev is not None:
            upd = torch.linalg.vector_norm(x - prev, 2).square()
        else:
            key = (x.device, x.dtype)
            upd = self._nan.get(key)
            if upd is None:
                upd = self._nan[key] = torch.full((), math.nan, dtype=x.dtype, device=x.device)
        row = torch.stack([var, mean, lo, hi, torch.linalg.vector_norm(x, 1),
                           torch.count_nonzero(x).to(x.dtype), upd])
        if row.dtype != torch.float64:
            row = row.to(torch.float64)
        self.rows[x.device].append(row)
        self.where.append((x.device, len(self.rows[x.device]) - 1))
        self.sources.append((x, prev))
        return len(self.where) - 1

    def fetch(self) -> None:
        fetched = {dev: torch.stack(rows).cpu().tolist() for dev, rows in self.rows.items()}
        for (dev, i), (x, prev) in zip(self.where, self.sources):
            v = fetched[dev][i]
            n = x.numel()
            if all(math.isfinite(v[k]) for k in (_VAR, _MEAN, _MIN, _MAX, _SUM_ABS)) and not math.isinf(v[_UPD]):
                var, mean = max(v[_VAR], 0.0), v[_MEAN]
                self.host.append(TensorStats(
                    math.sqrt(n * (var + mean * mean)), mean, v[_SUM_ABS] / n, math.sqrt(var), v[_MIN], v[_MAX],
                    max(-v[_MIN], v[_MAX]), (n - v[_NONZERO]) / n, 0, n,
                ))
                self.updates.append(None if v[_UPD] != v[_UPD] else math.sqrt(v[_UPD]))
            else:  # NaN/Inf, or a float32 overflow: recompute exactly on the host (rare)
                a = x.cpu().numpy()
                self.host.append(tensor_stats(a))
                self.updates.append(None if prev is None else diff_norm(a, prev.cpu().numpy()))


def add_stats(logger: "StepLogger", groups, out: dict[str, float], *, gradients: bool, weights: bool) -> None:
    dev = _DeviceRows()
    scratch = logger._scratch
    # (kind, layer, [stats or device-row index], [update norm or device-row index or None], has_update)
    plan: list[tuple[str, str, list[Any], list[Any], bool]] = []
    keep_later: list[tuple[str, list[torch.Tensor], list[Any] | None]] = []

    with torch.no_grad():
        for name, params in groups:
            keep = logger._keep(name)
            if gradients:
                grads = [g for g in (_flat(p.grad) for p in params if p.grad is not None) if g.numel()]
                if grads and keep:
                    parts = [tensor_stats(g.numpy(), scratch) if _on_host(g) else dev.add(g) for g in grads]
                    plan.append(("g", logger._names(name), parts, [], False))
                elif grads:  # filtered out: counts towards grad_norm only
                    parts = [norm_only(g.numpy()) if _on_host(g) else dev.add(g) for g in grads]
                    plan.append(("g-", name, parts, [], False))
            if weights and keep:
                layer = logger._names(name)
                ws = [w for w in (_flat(p) for p in params) if w.numel()]
                if not ws:
                    continue
                prevs = _usable_prev(logger, layer, ws)
                parts, updates = [], []
                for j, w in enumerate(ws):
                    prev = prevs[j] if prevs is not None else None
                    if _on_host(w):
                        a = w.numpy()
                        parts.append(tensor_stats(a, scratch))
                        updates.append(None if prev is None else diff_norm(a, prev, scratch))
                    else:
                        i = dev.add(w, prev)
                        parts.append(i)
                        updates.append(i)
                plan.append(("w", layer, parts, updates, prevs is not None))
                if logger.update_ratio:
                    keep_later.append((layer, ws, prevs))
        dev.fetch()
        for layer, ws, prevs in keep_later:  # after every use of the previous weights
            _keep_weights(logger, layer, ws, prevs)

    norms: list[float] = []
    for kind, layer, parts, updates, has_update in plan:
        if kind == "g-":
            norms.extend(dev.host[p].norm if isinstance(p, int) else p for p in parts)
            continue
        st = combine([dev.host[p] if isinstance(p, int) else p for p in parts])
        if kind == "g":
            logger._add_gradient(out, layer, st)
            norms.append(st.norm)
        else:
            upd = None
            if has_update:
                upd = global_norm(dev.updates[u] if isinstance(u, int) else u for u in updates)
            logger._add_weight(out, layer, st, upd)
    if norms:
        out[logger.prefix + "grad_norm"] = global_norm(norms)


def _usable_prev(logger: "StepLogger", layer: str, ws: list[torch.Tensor]) -> list[Any] | None:
    """The previous weights of this layer if they line up with ``ws`` (else None)."""
    if not logger.update_ratio:
        return None
    prevs = logger._prev_weights.get(layer)
    if not isinstance(prevs, list) or len(prevs) != len(ws):
        return None
    for p, w in zip(prevs, ws):
        if _on_host(w):
            if not (isinstance(p, np.ndarray) and p.shape == (w.numel(),) and p.dtype == w.numpy().dtype):
                return None
        elif not (isinstance(p, torch.Tensor) and p.shape == w.shape and p.dtype == w.dtype and p.device == w.device):
            return None
    return prevs


def _keep_weights(logger: "StepLogger", layer: str, ws: list[torch.Tensor], prevs: list[Any] | None) -> None:
    """Copy the weights into the previous-weights buffers, reused from step to step."""
    if prevs is not None:
        for p, w in zip(prevs, ws):
            if isinstance(p, np.ndarray):
                np.copyto(p, w.numpy())
            else:
                p.copy_(w)
    else:
        logger._prev_weights[layer] = [w.numpy().copy() if _on_host(w) else w.clone() for w in ws]


def snapshot(logger: "StepLogger", groups) -> None:
    with torch.no_grad():
        for name, params in groups:
            if logger._keep(name):
                layer = logger._names(name)
                ws = [w for w in (_flat(p) for p in params) if w.numel()]
                _keep_weights(logger, layer, ws, _usable_prev(logger, layer, ws))
