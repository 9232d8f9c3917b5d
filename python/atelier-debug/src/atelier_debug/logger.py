"""StepLogger: per-step loss, gradient and weight statistics, one MLflow ``log_batch`` per step."""

from __future__ import annotations

import fnmatch
import math
import os
import time
from typing import Any, Callable, Iterable, Mapping, Union

import numpy as np

from ._names import LayerNames, sanitize_prefix
from ._stats import Scratch, TensorStats, diff_norm, global_norm, norm_only, tensor_stats, to_numpy

LayerFilter = Union[None, str, Iterable[str], Callable[[str], bool]]

GRADIENT_STATS = ("norm", "mean_abs", "std", "max_abs", "zero_fraction", "nonfinite")
WEIGHT_STATS = ("norm", "mean_abs", "std")  # + "update_ratio" from the second logged step on
FULL_EXTRA_GRADIENT_STATS = ("min", "max")
FULL_EXTRA_WEIGHT_STATS = ("min", "max", "max_abs", "zero_fraction", "nonfinite")
MAX_PREFIX_LEN = 100


def _scalar(v: Any) -> float:
    """float() of a Python/numpy number or a one-element array/tensor (NaN and Inf pass through)."""
    try:
        return float(v)
    except TypeError:
        if hasattr(v, "detach"):
            v = v.detach().cpu()
        return float(np.asarray(v, dtype=np.float64).reshape(-1)[0])


class StepLogger:
    """Logs loss, gradient and weight statistics for one training run, one request per step.

    Args:
        run_id: the MLflow run to log to. When omitted, each call uses the active run
            (``mlflow.start_run()``), else the ``MLFLOW_RUN_ID`` environment variable (which
            Atelier's jobs set).
        every: log tensor statistics and ``loss`` only on steps where ``step % every == 0``.
            ``val_loss`` and ``metrics`` are logged whenever they are given (they usually come
            from evaluation steps, which need not fall on a multiple of ``every``).
        layers: which layers get per-layer metrics: ``None`` (all), a name or glob pattern
            (``"encoder.*"``), a list of names/patterns, or a predicate ``f(name) -> bool``.
            Matched against the original (unsanitised) layer name. ``grad_norm`` always covers
            every gradient passed, filtered or not.
        prefix: prepended to every key, e.g. ``prefix="gen"`` logs ``gen/loss``,
            ``gen/gradients/fc1/norm``. Leave it unset for the keys Atelier's Debugger rules read.
        client: an ``mlflow.MlflowClient`` to use (default: one for ``mlflow.get_tracking_uri()``).
        update_ratio: keep a copy of the last logged weights to log ``weights/<layer>/update_ratio``
            (costs one copy of the tracked weights in memory; set False for very large models).
        full_stats: also log ``min``/``max`` for gradients and ``min``/``max``/``max_abs``/
            ``zero_fraction``/``nonfinite`` for weights.
    """

    def __init__(
        self,
        run_id: str | None = None,
        every: int = 1,
        layers: LayerFilter = None,
        prefix: str | None = None,
        *,
        client: Any = None,
        update_ratio: bool = True,
        full_stats: bool = False,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        self.run_id = run_id
        self.every = int(every)
        self.prefix = sanitize_prefix(prefix)
        if len(self.prefix) > MAX_PREFIX_LEN:
            raise ValueError(f"prefix is too long ({len(self.prefix)} > {MAX_PREFIX_LEN} characters)")
        self.update_ratio = bool(update_ratio)
        self.full_stats = bool(full_stats)
        self._layer_filter = _make_filter(layers)
        self._keep_cache: dict[str, bool] = {}
        self._names = LayerNames()
        self._client = client
        self._own_client_uri: str | None = None
        # sanitised layer -> last weights seen (numpy array or torch tensor), reused in place
        self._prev_weights: dict[str, Any] = {}
        self._scratch = Scratch()

    # ------------------------------------------------------------------ public API

    def log_step(
        self,
        step: int,
        loss: Any = None,
        val_loss: Any = None,
        metrics: Mapping[str, Any] | None = None,
        gradients: Mapping[str, Any] | None = None,
        weights: Mapping[str, Any] | None = None,
    ) -> dict[str, float]:
        """Compute the statistics for this step and log them in one ``log_batch`` call.

        ``gradients`` and ``weights`` map a layer name to an array (numpy array, anything
        ``np.asarray`` takes, or a torch tensor). Call it at the same point of every step (e.g.
        after the backward pass, before the optimiser step). ``weights/<layer>/update_ratio`` is
        ``||w_step - w_prev|| / ||w_step||`` where ``w_prev`` are the weights passed at step
        ``step - 1`` (with ``every=N`` the weights of the step before each logged step are kept for
        this; if steps are skipped, the last weights kept). Weights may be updated in place: the
        logger keeps its own copy.

        Returns the ``{key: value}`` that was logged (empty when nothing was due).
        """
        step = _step(step)
        due = step % self.every == 0
        out = self._scalars(due, loss, val_loss, metrics)
        if due:
            if gradients is not None:
                self._gradient_metrics(gradients, out)
            if weights is not None:
                self._weight_metrics(weights, out)
        elif weights is not None and self.update_ratio and (step + 1) % self.every == 0:
            self._snapshot(weights)
        self._emit(step, out)
        return out

    def log_torch(
        self,
        step: int,
        model: Any,
        loss: Any = None,
        val_loss: Any = None,
        metrics: Mapping[str, Any] | None = None,
        *,
        gradients: bool = True,
        weights: bool = True,
        by: str = "module",
    ) -> dict[str, float]:
        """Like :meth:`log_step`, reading ``p.grad`` and ``p.data`` of ``model.named_parameters()``.

        Call it after ``loss.backward()`` and before ``optimizer.zero_grad()``. Parameters are
        grouped per module (``by="module"``: ``fc1.weight`` and ``fc1.bias`` form layer ``fc1``;
        a parameter registered on the model itself is a layer of its own) or kept apart
        (``by="parameter"``: layers ``fc1.weight``, ``fc1.bias``). CPU tensors are read through
        numpy views; tensors on an accelerator are reduced on their device, and only a few numbers
        per tensor cross to the host (one transfer per device). Parameters without a gradient
        (frozen, unused) get weight metrics only.
        """
        if by not in ("module", "parameter"):
            raise ValueError(f"by must be 'module' or 'parameter', got {by!r}")
        step = _step(step)
        due = step % self.every == 0
        out = self._scalars(due, loss, val_loss, metrics)
        snapshot = not due and weights and self.update_ratio and (step + 1) % self.every == 0
        if due and (gradients or weights) or snapshot:
            from . import _torch  # imports torch; only reached with a torch model

            groups = _torch.group_parameters(model, by)
            if due:
                _torch.add_stats(self, groups, out, gradients=gradients, weights=weights)
            else:
                _torch.snapshot(self, groups)
        self._emit(step, out)
        return out

    def reset(self) -> None:
        """Forget the previous weights (the next logged step has no update ratio)."""
        self._prev_weights.clear()

    # ------------------------------------------------------------------ internals

    def _keep(self, name: str) -> bool:
        got = self._keep_cache.get(name)
        if got is None:
            got = self._keep_cache[name] = bool(self._layer_filter(name))
        return got

    def _scalars(self, due: bool, loss: Any, val_loss: Any, metrics: Mapping[str, Any] | None) -> dict[str, float]:
        p = self.prefix
        out: dict[str, float] = {}
        if due and loss is not None:
            out[p + "loss"] = _scalar(loss)
        if val_loss is not None:
            out[p + "val_loss"] = _scalar(val_loss)
        if metrics:
            for k, v in metrics.items():
                out[p + str(k)] = _scalar(v)
        return out

    def _gradient_metrics(self, gradients: Mapping[str, Any], out: dict[str, float]) -> None:
        norms: list[float] = []
        for name, g in gradients.items():
            if g is None:
                continue
            a = to_numpy(g)
            if a.size == 0:
                continue
            name = str(name)
            if self._keep(name):
                st = tensor_stats(a, self._scratch)
                self._add_gradient(out, self._names(name), st)
                norms.append(st.norm)
            else:
                norms.append(norm_only(a))
        if norms:
            out[self.prefix + "grad_norm"] = global_norm(norms)

    def _add_gradient(self, out: dict[str, float], layer: str, st: TensorStats) -> None:
        k = f"{self.prefix}gradients/{layer}/"
        out[k + "norm"] = st.norm
        out[k + "mean_abs"] = st.mean_abs
        out[k + "std"] = st.std
        out[k + "max_abs"] = st.max_abs
        out[k + "zero_fraction"] = st.zero_fraction
        out[k + "nonfinite"] = float(st.nonfinite)
        if self.full_stats:
            out[k + "min"] = st.min
            out[k + "max"] = st.max

    def _add_weight(self, out: dict[str, float], layer: str, st: TensorStats, update_norm: float | None) -> None:
        k = f"{self.prefix}weights/{layer}/"
        out[k + "norm"] = st.norm
        out[k + "mean_abs"] = st.mean_abs
        out[k + "std"] = st.std
        if update_norm is not None:
            out[k + "update_ratio"] = ratio(update_norm, st.norm)
        if self.full_stats:
            out[k + "min"] = st.min
            out[k + "max"] = st.max
            out[k + "max_abs"] = st.max_abs
            out[k + "zero_fraction"] = st.zero_fraction
            out[k + "nonfinite"] = float(st.nonfinite)

    def _weight_metrics(self, weights: Mapping[str, Any], out: dict[str, float]) -> None:
        for name, w in weights.items():
            name = str(name)
            if w is None or not self._keep(name):
                continue
            a = to_numpy(w)
            if a.size == 0:
                continue
            layer = self._names(name)
            st = tensor_stats(a, self._scratch)
            update_norm = None
            if self.update_ratio:
                prev = self._prev_weights.get(layer)
                if isinstance(prev, np.ndarray) and prev.shape == a.shape and prev.dtype == a.dtype:
                    update_norm = diff_norm(a, prev, self._scratch)
                self._keep_weights(layer, a)
            self._add_weight(out, layer, st, update_norm)

    def _keep_weights(self, layer: str, a: np.ndarray) -> None:
        prev = self._prev_weights.get(layer)
        if isinstance(prev, np.ndarray) and prev.shape == a.shape and prev.dtype == a.dtype:
            np.copyto(prev, a)  # reuse the buffer: no allocation per step
        else:
            self._prev_weights[layer] = a.copy()

    def _snapshot(self, weights: Mapping[str, Any]) -> None:
        for name, w in weights.items():
            name = str(name)
            if w is None or not self._keep(name):
                continue
            self._keep_weights(self._names(name), to_numpy(w))

    def _resolve_run_id(self) -> str:
        if self.run_id:
            return self.run_id
        import mlflow

        run = mlflow.active_run()
        if run is not None:
            return run.info.run_id
        env = os.environ.get("MLFLOW_RUN_ID")
        if env:
            return env
        raise RuntimeError(
            "atelier_debug.StepLogger has no run to log to: pass run_id=..., call "
            "mlflow.start_run() first, or set MLFLOW_RUN_ID"
        )

    def _get_client(self) -> Any:
        import mlflow

        if self._client is not None and self._own_client_uri is None:
            return self._client  # given by the caller
        uri = mlflow.get_tracking_uri()
        if self._client is None or self._own_client_uri != uri:
            self._client = mlflow.MlflowClient(tracking_uri=uri)
            self._own_client_uri = uri
        return self._client

    def _emit(self, step: int, out: dict[str, float]) -> None:
        if not out:
            return
        from mlflow.entities import Metric

        run_id = self._resolve_run_id()
        ts = int(time.time() * 1000)
        batch = [Metric(k, v, ts, step) for k, v in out.items()]
        self._get_client().log_batch(run_id, metrics=batch)


def ratio(update_norm: float, weight_norm: float) -> float:
    """||dw|| / ||w||; 0 when nothing moved, inf for a move away from all-zero weights."""
    if weight_norm == 0.0:
        return 0.0 if update_norm == 0.0 else (math.nan if update_norm != update_norm else math.inf)
    return update_norm / weight_norm


def _step(step: Any) -> int:
    if isinstance(step, bool):
        raise TypeError("step must be an integer")
    s = int(step)
    if s != step:
        raise ValueError(f"step must be an integer, got {step!r}")
    return s


def _make_filter(layers: LayerFilter) -> Callable[[str], bool]:
    if layers is None:
        return lambda _name: True
    if callable(layers):
        return layers
    pats = [layers] if isinstance(layers, str) else [str(x) for x in layers]
    exact = {p for p in pats if not any(c in p for c in "*?[")}
    globs = [p for p in pats if p not in exact]
    return lambda name: name in exact or any(fnmatch.fnmatchcase(name, g) for g in globs)
