"""atelier-debug (python/atelier-debug): per-step loss/gradient/weight statistics for the Debugger.

Real training loops (a numpy MLP with hand-written backprop; a PyTorch MLP when torch is
installed) log through the real mlflow client to the server; the metric histories are read back
with MlflowClient.get_metric_history and checked against numpy's / torch's own numbers.
"""

from __future__ import annotations

import math
import subprocess
import sys

import mlflow
import numpy as np
import pytest

atelier_debug = pytest.importorskip(
    "atelier_debug", reason="install python/atelier-debug (tests/python/requirements.txt does)"
)
StepLogger = atelier_debug.StepLogger

GRAD_STATS = ("norm", "mean_abs", "std", "max_abs", "zero_fraction", "nonfinite")
WEIGHT_STATS = ("norm", "mean_abs", "std")


def history(client, run_id: str, key: str) -> dict[int, float]:
    """{step: value} of one metric (one value per step in these tests)."""
    hist = client.get_metric_history(run_id, key)
    out: dict[int, float] = {}
    for m in hist:
        assert m.step not in out, f"{key}: two values at step {m.step}"
        out[m.step] = m.value
    return out


def is_posinf(v: float) -> bool:
    """+inf as stored: Atelier keeps inf; MLflow's SQL store clamps it to the largest double."""
    return v == math.inf or v == sys.float_info.max


def count_log_batch(monkeypatch) -> list[int]:
    """Records the number of metrics of every MlflowClient.log_batch call."""
    calls: list[int] = []
    orig = mlflow.MlflowClient.log_batch

    def wrapped(self, run_id, metrics=(), *args, **kwargs):
        calls.append(len(metrics))
        return orig(self, run_id, metrics, *args, **kwargs)

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", wrapped)
    return calls


# ---------------------------------------------------------------------------------------------
# A two-layer MLP in numpy with hand-written backprop, on two Gaussian blobs.

LAYERS = {  # the names a Keras-style model would use -> the sanitised metric-key segment
    "hidden/kernel:0": "hidden_kernel_0",
    "hidden/bias:0": "hidden_bias_0",
    "out/kernel:0": "out_kernel_0",
    "out/bias:0": "out_bias_0",
}


def make_data(rng, n=256):
    x0 = rng.normal(loc=(-1.0, -1.0), scale=0.8, size=(n // 2, 2))
    x1 = rng.normal(loc=(1.0, 1.0), scale=0.8, size=(n // 2, 2))
    x = np.vstack([x0, x1])
    y = np.concatenate([np.zeros(n // 2), np.ones(n // 2)])[:, None]
    perm = rng.permutation(n)
    return x[perm], y[perm]


def init_params(rng, hidden=16):
    return {
        "hidden/kernel:0": rng.normal(scale=0.5, size=(2, hidden)),
        "hidden/bias:0": np.zeros(hidden),
        "out/kernel:0": rng.normal(scale=0.5, size=(hidden, 1)),
        "out/bias:0": np.zeros(1),
    }


def forward_backward(params, x, y):
    """Binary cross-entropy of a ReLU MLP and its gradients."""
    w1, b1, w2, b2 = (params[k] for k in LAYERS)
    z1 = x @ w1 + b1
    h = np.maximum(z1, 0.0)
    logits = h @ w2 + b2
    p = 1.0 / (1.0 + np.exp(-logits))
    eps = 1e-12
    loss = float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
    n = x.shape[0]
    dlogits = (p - y) / n
    dw2 = h.T @ dlogits
    db2 = dlogits.sum(axis=0)
    dh = dlogits @ w2.T
    dz1 = dh * (z1 > 0)
    dw1 = x.T @ dz1
    db1 = dz1.sum(axis=0)
    return loss, dict(zip(LAYERS, (dw1, db1, dw2, db2)))


def bce(params, x, y):
    return forward_backward(params, x, y)[0]


def test_numpy_mlp_training_logs_debug_metrics(server, client, experiment_id, monkeypatch):
    rng = np.random.default_rng(7)
    x, y = make_data(rng)
    xv, yv = make_data(rng, 128)
    params = init_params(rng)
    lr, steps = 0.5, 40
    calls = count_log_batch(monkeypatch)
    seen_grads, seen_weights, losses = [], [], []

    with mlflow.start_run() as run:
        logger = StepLogger()
        for step in range(steps):
            loss, grads = forward_backward(params, x, y)
            val = bce(params, xv, yv) if step % 10 == 9 else None
            logged = logger.log_step(step, loss=loss, val_loss=val, gradients=grads, weights=params)
            seen_grads.append({k: g.copy() for k, g in grads.items()})
            seen_weights.append({k: w.copy() for k, w in params.items()})
            losses.append(loss)
            assert logged[f"gradients/{LAYERS['out/kernel:0']}/norm"] == pytest.approx(
                np.linalg.norm(grads["out/kernel:0"]), rel=1e-12
            )
            for k in params:  # in-place SGD: the logger must have copied the previous weights
                params[k] -= lr * grads[k]
    rid = run.info.run_id

    # one log_batch call per step, each carrying all of that step's metrics
    per_step = 1 + 1 + 4 * len(GRAD_STATS) + 4 * len(WEIGHT_STATS)  # loss, grad_norm, layers
    assert len(calls) == steps
    assert calls[0] == per_step  # no update ratio yet, no val_loss
    assert calls[1] == per_step + 4  # + update_ratio per layer
    assert calls[9] == per_step + 4 + 1  # + val_loss

    # the loss decreased
    loss_h = history(client, rid, "loss")
    assert sorted(loss_h) == list(range(steps))
    assert [loss_h[s] for s in range(steps)] == pytest.approx(losses, rel=1e-12)
    assert loss_h[steps - 1] < 0.6 * loss_h[0]
    assert np.mean([loss_h[s] for s in range(steps - 5, steps)]) < np.mean([loss_h[s] for s in range(5)])
    val_h = history(client, rid, "val_loss")
    assert sorted(val_h) == [9, 19, 29, 39]
    assert val_h[39] < val_h[9]

    # layer names were sanitised, and nothing else was logged
    keys = set(client.get_run(rid).data.metrics)
    for original, clean in LAYERS.items():
        assert original not in "".join(keys)
        for stat in GRAD_STATS:
            assert f"gradients/{clean}/{stat}" in keys
        for stat in (*WEIGHT_STATS, "update_ratio"):
            assert f"weights/{clean}/{stat}" in keys
    assert keys == {
        "loss", "val_loss", "grad_norm",
        *(f"gradients/{c}/{s}" for c in LAYERS.values() for s in GRAD_STATS),
        *(f"weights/{c}/{s}" for c in LAYERS.values() for s in (*WEIGHT_STATS, "update_ratio")),
    }
    assert all(":" not in k and k.count("/") in (0, 2) for k in keys)

    # gradient statistics match numpy's own numbers for the arrays that were passed
    grad_norm_h = history(client, rid, "grad_norm")
    for original, clean in LAYERS.items():
        norm_h = history(client, rid, f"gradients/{clean}/norm")
        mean_abs_h = history(client, rid, f"gradients/{clean}/mean_abs")
        std_h = history(client, rid, f"gradients/{clean}/std")
        max_abs_h = history(client, rid, f"gradients/{clean}/max_abs")
        zero_h = history(client, rid, f"gradients/{clean}/zero_fraction")
        nonfinite_h = history(client, rid, f"gradients/{clean}/nonfinite")
        assert sorted(norm_h) == list(range(steps))
        for s in range(steps):
            g = seen_grads[s][original]
            assert norm_h[s] > 0
            assert norm_h[s] == pytest.approx(np.linalg.norm(g), rel=1e-9)
            assert mean_abs_h[s] == pytest.approx(np.mean(np.abs(g)), rel=1e-9)
            assert std_h[s] == pytest.approx(np.std(g), rel=1e-9, abs=1e-15)
            assert max_abs_h[s] == pytest.approx(np.max(np.abs(g)), rel=1e-9)
            assert zero_h[s] == pytest.approx(np.mean(g == 0), abs=1e-12)
            assert nonfinite_h[s] == 0
    for s in range(steps):
        everything = np.concatenate([g.ravel() for g in seen_grads[s].values()])
        assert grad_norm_h[s] > 0
        assert grad_norm_h[s] == pytest.approx(np.linalg.norm(everything), rel=1e-9)

    # weight statistics and update ratios (||w_s - w_{s-1}|| / ||w_s||, from step 1 on)
    for original, clean in LAYERS.items():
        wnorm_h = history(client, rid, f"weights/{clean}/norm")
        ratio_h = history(client, rid, f"weights/{clean}/update_ratio")
        assert sorted(ratio_h) == list(range(1, steps))
        for s in range(steps):
            assert wnorm_h[s] == pytest.approx(np.linalg.norm(seen_weights[s][original]), rel=1e-9)
        for s in range(1, steps):
            w, prev = seen_weights[s][original], seen_weights[s - 1][original]
            assert ratio_h[s] > 0
            assert ratio_h[s] == pytest.approx(np.linalg.norm(w - prev) / np.linalg.norm(w), rel=1e-9)
            # plain SGD: the update is lr * the previous gradient
            assert ratio_h[s] == pytest.approx(
                lr * np.linalg.norm(seen_grads[s - 1][original]) / np.linalg.norm(w), rel=1e-9
            )


def test_nonfinite_gradients_are_logged(server, client, experiment_id):
    rng = np.random.default_rng(1)
    w = {"enc.fc": rng.normal(size=(4, 3)), "head": rng.normal(size=3)}
    g_ok = {"enc.fc": rng.normal(size=(4, 3)), "head": rng.normal(size=3)}
    g_nan = {"enc.fc": g_ok["enc.fc"].copy(), "head": g_ok["head"].copy()}
    g_nan["enc.fc"][1, 2] = np.nan
    g_nan["enc.fc"][0, 0] = np.nan
    g_inf = {"enc.fc": g_ok["enc.fc"].copy(), "head": g_ok["head"].copy()}
    g_inf["head"][0] = np.inf
    with mlflow.start_run() as run:
        logger = StepLogger()
        logger.log_step(0, loss=1.0, gradients=g_ok, weights=w)
        logger.log_step(1, loss=float("nan"), gradients=g_nan, weights=w)
        logger.log_step(2, loss=float("inf"), gradients=g_inf, weights=w)
    rid = run.info.run_id

    nonfinite = history(client, rid, "gradients/enc.fc/nonfinite")
    assert nonfinite == {0: 0.0, 1: 2.0, 2: 0.0}
    assert history(client, rid, "gradients/head/nonfinite") == {0: 0.0, 1: 0.0, 2: 1.0}
    grad_norm = history(client, rid, "grad_norm")
    assert grad_norm[0] == pytest.approx(math.hypot(np.linalg.norm(g_ok["enc.fc"]), np.linalg.norm(g_ok["head"])))
    assert math.isnan(grad_norm[1])
    assert is_posinf(grad_norm[2])
    assert math.isnan(history(client, rid, "gradients/enc.fc/norm")[1])
    assert math.isnan(history(client, rid, "gradients/enc.fc/max_abs")[1])
    assert history(client, rid, "gradients/head/norm")[1] == pytest.approx(np.linalg.norm(g_ok["head"]))
    assert is_posinf(history(client, rid, "gradients/head/max_abs")[2])
    loss = history(client, rid, "loss")
    assert math.isnan(loss[1]) and is_posinf(loss[2])
    # unchanged weights: update ratio exactly 0 (what UnchangedTensor looks for)
    assert history(client, rid, "weights/head/update_ratio") == {1: 0.0, 2: 0.0}


def test_every_layers_prefix_and_run_id_from_env(server, client, experiment_id, monkeypatch):
    run_id = client.create_run(experiment_id).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)  # what Atelier's jobs set; no active run
    assert mlflow.active_run() is None
    calls = count_log_batch(monkeypatch)
    rng = np.random.default_rng(3)
    w = {"block.0.conv": rng.normal(size=(8, 8)), "block.1.conv": rng.normal(size=(8, 8)), "head": rng.normal(size=8)}
    logger = StepLogger(every=5, layers=["block.*"], prefix="gen")
    w0 = {}
    for step in range(12):
        w0[step] = w["block.0.conv"]
        grads = {k: rng.normal(size=v.shape) for k, v in w.items()}
        logger.log_step(step, loss=1.0 / (step + 1), val_loss=0.5 if step == 7 else None, gradients=grads, weights=w)
        if step == 10:
            last_grads = grads
        for k in w:
            w[k] = w[k] - 0.1 * grads[k]  # rebinding, not in place
    # steps 0, 5, 10 carry statistics; step 7 only val_loss; others nothing
    assert len(calls) == 4 and calls[2] == 1

    keys = set(client.get_run(run_id).data.metrics)
    assert all(k.startswith("gen/") for k in keys)
    assert not any("head" in k for k in keys)  # filtered out of the per-layer metrics
    assert history(client, run_id, "gen/loss") == pytest.approx({0: 1.0, 5: 1 / 6, 10: 1 / 11})
    assert history(client, run_id, "gen/val_loss") == {7: 0.5}
    assert sorted(history(client, run_id, "gen/gradients/block.1.conv/norm")) == [0, 5, 10]
    # grad_norm covers every gradient passed, filtered layers included
    everything = np.concatenate([g.ravel() for g in last_grads.values()])
    assert history(client, run_id, "gen/grad_norm")[10] == pytest.approx(np.linalg.norm(everything), rel=1e-9)
    # the weights of step 4 were kept, so the ratio at step 5 is a one-step ratio
    ratios = history(client, run_id, "gen/weights/block.0.conv/update_ratio")
    assert sorted(ratios) == [5, 10]
    for s in (5, 10):
        expected = np.linalg.norm(w0[s] - w0[s - 1]) / np.linalg.norm(w0[s])
        assert ratios[s] > 0 and ratios[s] == pytest.approx(expected, rel=1e-9)


def test_no_run_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    assert mlflow.active_run() is None
    with pytest.raises(RuntimeError, match="no run to log to"):
        StepLogger().log_step(0, loss=1.0)
    # nothing due: no request, no error
    assert StepLogger(every=2).log_step(1, loss=1.0) == {}


def test_layer_name_sanitising():
    from atelier_debug import sanitize_layer
    from atelier_debug._names import LayerNames

    assert sanitize_layer("model/dense_1/kernel:0") == "model_dense_1_kernel_0"
    assert sanitize_layer("encoder.layers.0.self_attn") == "encoder.layers.0.self_attn"
    assert sanitize_layer("conv 1-a") == "conv 1-a"
    assert sanitize_layer("..") == "__"
    assert sanitize_layer("") == "_"
    assert sanitize_layer("Schicht→ß") == "Schicht__"
    long = sanitize_layer("x" * 300)
    assert len(long) == 120 and long.startswith("x" * 111 + "-")
    names = LayerNames()
    a, b = names("a:b"), names("a/b")
    assert a == "a_b" and b.startswith("a_b-") and a != b
    assert names("a:b") == a and names("a/b") == b  # stable


def test_package_imports_without_torch():
    code = "import sys; sys.modules['torch'] = None; import atelier_debug; print(atelier_debug.StepLogger)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    code = "import sys, atelier_debug; assert 'torch' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------------------------------------
# PyTorch


@pytest.mark.parametrize("path", ["numpy-views", "device-reductions"])
def test_torch_training_logs_debug_metrics(server, client, experiment_id, monkeypatch, path):
    torch = pytest.importorskip("torch", reason="torch is not installed in this venv (its wheel is ~540 MB, so requirements.txt leaves it out)")
    import atelier_debug._torch

    # CPU tensors normally go through numpy; "device-reductions" runs the CUDA/MPS code path on CPU
    monkeypatch.setattr(atelier_debug._torch, "CPU_VIA_NUMPY", path == "numpy-views")
    torch.manual_seed(0)
    rng = np.random.default_rng(5)
    xn, yn = make_data(rng)
    x, y = torch.tensor(xn, dtype=torch.float32), torch.tensor(yn, dtype=torch.float32)
    model = torch.nn.Sequential()
    model.add_module("fc1", torch.nn.Linear(2, 16))
    model.add_module("act", torch.nn.ReLU())
    model.add_module("fc2", torch.nn.Linear(16, 1))
    model.register_parameter("temperature", torch.nn.Parameter(torch.ones(1)))  # a root parameter
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    calls = count_log_batch(monkeypatch)
    steps = 30
    seen = []
    with mlflow.start_run() as run:
        logger = StepLogger()
        for step in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x) / model.temperature, y)
            loss.backward()
            logger.log_torch(step, model, loss=loss)
            seen.append({
                "fc1": torch.cat([model.fc1.weight.grad.reshape(-1), model.fc1.bias.grad]).double(),
                "fc2": torch.cat([model.fc2.weight.grad.reshape(-1), model.fc2.bias.grad]).double(),
                "temperature": model.temperature.grad.double().clone(),
                "all": torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double(),
            })
            opt.step()
    rid = run.info.run_id
    assert len(calls) == steps

    loss_h = history(client, rid, "loss")
    assert sorted(loss_h) == list(range(steps)) and loss_h[steps - 1] < 0.6 * loss_h[0]
    keys = set(client.get_run(rid).data.metrics)
    for layer in ("fc1", "fc2", "temperature"):
        for stat in GRAD_STATS:
            assert f"gradients/{layer}/{stat}" in keys
        for stat in (*WEIGHT_STATS, "update_ratio"):
            assert f"weights/{layer}/{stat}" in keys
    assert not any("/act/" in k for k in keys)  # no parameters, no metrics
    grad_norm_h = history(client, rid, "grad_norm")
    for layer in ("fc1", "fc2", "temperature"):
        norm_h = history(client, rid, f"gradients/{layer}/norm")
        std_h = history(client, rid, f"gradients/{layer}/std")
        for s in range(steps):
            assert norm_h[s] > 0
            assert norm_h[s] == pytest.approx(float(torch.linalg.vector_norm(seen[s][layer])), rel=1e-6)
            assert std_h[s] == pytest.approx(float(seen[s][layer].std(correction=0)), rel=1e-6, abs=1e-12)
        ratio_h = history(client, rid, f"weights/{layer}/update_ratio")
        assert sorted(ratio_h) == list(range(1, steps)) and all(r > 0 for r in ratio_h.values())
    for s in range(steps):
        assert grad_norm_h[s] == pytest.approx(float(torch.linalg.vector_norm(seen[s]["all"])), rel=1e-6)

    # a NaN gradient, per parameter this time
    with mlflow.start_run() as run2:
        logger = StepLogger()
        opt.zero_grad()
        model(x).sum().backward()
        model.fc2.weight.grad[0, 3] = float("nan")
        model.fc1.bias.grad[2] = float("inf")
        logged = logger.log_torch(0, model, by="parameter")
    rid2 = run2.info.run_id
    assert "gradients/fc2.weight/nonfinite" in logged
    assert history(client, rid2, "gradients/fc2.weight/nonfinite") == {0: 1.0}
    assert history(client, rid2, "gradients/fc1.bias/nonfinite") == {0: 1.0}
    assert history(client, rid2, "gradients/fc2.bias/nonfinite") == {0: 0.0}
    assert math.isnan(history(client, rid2, "gradients/fc2.weight/norm")[0])
    assert is_posinf(history(client, rid2, "gradients/fc1.bias/norm")[0])
    fc1w = model.fc1.weight.grad.double()
    assert history(client, rid2, "gradients/fc1.weight/norm")[0] == pytest.approx(float(fc1w.norm()), rel=1e-6)
    assert history(client, rid2, "gradients/fc1.weight/zero_fraction")[0] == pytest.approx(
        float((fc1w == 0).double().mean()), abs=1e-9
    )
    assert math.isnan(history(client, rid2, "grad_norm")[0])


@pytest.mark.parametrize("path", ["numpy-views", "device-reductions"])
def test_torch_every_and_layer_filter(server, client, experiment_id, monkeypatch, path):
    torch = pytest.importorskip("torch", reason="torch is not installed in this venv (its wheel is ~540 MB, so requirements.txt leaves it out)")
    import atelier_debug._torch

    monkeypatch.setattr(atelier_debug._torch, "CPU_VIA_NUMPY", path == "numpy-views")
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(32, 4), torch.randn(32, 1)
    calls = count_log_batch(monkeypatch)
    fc0 = {}
    with mlflow.start_run() as run:
        logger = StepLogger(every=3, layers="0")
        for step in range(7):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            fc0[step] = torch.cat([model[0].weight.reshape(-1), model[0].bias]).detach().double().clone()
            all_grads = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double()
            if step == 6:
                last_norm = float(all_grads.norm())
            logger.log_torch(step, model, loss=loss)
            opt.step()
    rid = run.info.run_id
    assert len(calls) == 3  # steps 0, 3, 6
    keys = set(client.get_run(rid).data.metrics)
    assert {k.split("/")[1] for k in keys if k.count("/") == 2} == {"0"}
    assert history(client, rid, "grad_norm")[6] == pytest.approx(last_norm, rel=1e-6)
    ratios = history(client, rid, "weights/0/update_ratio")
    assert sorted(ratios) == [3, 6]
    for s in (3, 6):  # the weights of step s-1 were kept: a one-step ratio
        expected = float((fc0[s] - fc0[s - 1]).norm() / fc0[s].norm())
        assert ratios[s] == pytest.approx(expected, rel=1e-5)
