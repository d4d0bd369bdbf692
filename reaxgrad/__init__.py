"""reaxgrad: reactive molecular dynamics and ReaxFF force-field fitting on a JAX-like
function-transform engine (`reaxgrad.core`)."""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["ReaxFFCalculator", "__version__"]


def __getattr__(name):  # lazy: `import reaxgrad` stays light
    if name == "ReaxFFCalculator":
        from reaxgrad.md.calculator import ReaxFFCalculator

        return ReaxFFCalculator
    raise AttributeError(f"module 'reaxgrad' has no attribute {name!r}")
