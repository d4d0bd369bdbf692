"""reaxgrad: reactive molecular dynamics and ReaxFF force-field fitting on a JAX-like
function-transform engine (`reaxgrad.core`)."""
from __future__ import annotations

__version__ = "0.1.0"
