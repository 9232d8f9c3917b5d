"""atelier-debug: per-step loss, gradient and weight statistics for Atelier's Debugger rules.

    from atelier_debug import StepLogger

    logger = StepLogger()                      # active mlflow run, or MLFLOW_RUN_ID
    logger.log_step(step, loss=loss, gradients={"fc1": g1, ...}, weights={"fc1": w1, ...})
    logger.log_torch(step, model, loss=loss)   # PyTorch (torch imported only here)

Every call logs its metrics in one MLflow ``log_batch`` request. See README.md for the metric
names the Debugger rules read.
"""

from ._names import sanitize_layer
from ._stats import TensorStats, tensor_stats
from .logger import GRADIENT_STATS, WEIGHT_STATS, StepLogger

__all__ = ["StepLogger", "TensorStats", "tensor_stats", "sanitize_layer", "GRADIENT_STATS", "WEIGHT_STATS"]
__version__ = "0.1.0"
