"""reaxgrad.optimize: ReaxFF force-field fitting (`reaxgrad fit` / `reaxgrad evaluate`):
batches of structures, the loss and its parameter gradient, in-loop relaxation, implicit
geometry gradients, the outer loop with checkpoints, reports and sensitivities."""

from .driver import Fit, Settings
from .parameters import ParameterMap
from .problem import Evaluation, FitProblem
from .relax import Relaxer

__all__ = ["Evaluation", "Fit", "FitProblem", "ParameterMap", "Relaxer", "Settings"]
