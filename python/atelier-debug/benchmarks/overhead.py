"""Per-step overhead of StepLogger for a 10-layer model.

    python benchmarks/overhead.py                      # statistics only (no server)
    python benchmarks/overhead.py --tracking-uri http://127.0.0.1:5000   # + the log_batch request
    python benchmarks/overhead.py --torch              # log_torch on a 10-layer torch MLP (CPU)

Prints the median time of one log_step/log_torch call (gradients + weights of every layer).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from atelier_debug import StepLogger


class NullClient:
    """Stands in for MlflowClient: measures the statistics alone."""

    def __init__(self) -> None:
        self.metrics = 0

    def log_batch(self, run_id, metrics=(), **_kw):
        self.metrics = len(metrics)


def bench(fn, steps: int) -> float:
    times = []
    for step in range(steps):
        t0 = time.perf_counter()
        fn(step)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[3:]) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=256, help="each layer is width x width + bias")
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--tracking-uri", default=None)
    ap.add_argument("--torch", action="store_true")
    args = ap.parse_args()

    run_id, client = "bench", NullClient()
    if args.tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(args.tracking_uri)
        client = mlflow.MlflowClient(args.tracking_uri)
        exp = client.create_experiment(f"atelier-debug-overhead-{time.time_ns()}")
        run_id = client.create_run(exp).info.run_id
    logger = StepLogger(run_id=run_id, client=client)
    last: list = []
    n_params = args.layers * (args.width * args.width + args.width)

    if args.torch:
        import torch

        torch.set_num_threads(1)
        model = torch.nn.Sequential(*[torch.nn.Linear(args.width, args.width) for _ in range(args.layers)])
        x = torch.randn(64, args.width)
        model(x).square().mean().backward()

        def step_fn(step):
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-1e-3)
            last[:] = [logger.log_torch(step, model, loss=0.5)]

        what = "log_torch (float32 CPU)"
    else:
        rng = np.random.default_rng(0)
        weights = {
            f"layer{i}": rng.normal(size=(args.width * args.width + args.width)).astype(np.float32)
            for i in range(args.layers)
        }
        grads = {k: rng.normal(size=w.shape).astype(np.float32) for k, w in weights.items()}

        def step_fn(step):
            for k in weights:
                weights[k] -= 1e-3 * grads[k]
            last[:] = [logger.log_step(step, loss=0.5, gradients=grads, weights=weights)]

        what = "log_step (float32 numpy)"

    def update_only(step):
        if args.torch:
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-1e-3)
        else:
            for k in weights:
                weights[k] -= 1e-3 * grads[k]

    base = bench(update_only, args.steps)
    total = bench(step_fn, args.steps)
    target = f"log_batch to {args.tracking_uri}" if args.tracking_uri else "no request (statistics only)"
    print(f"{what}, {args.layers} layers x {args.width}x{args.width} ({n_params / 1e6:.2f} M params), {target}:")
    print(f"  {total - base:.2f} ms per step (median of {args.steps}), {len(last[0])} metrics in one log_batch")


if __name__ == "__main__":
    main()
