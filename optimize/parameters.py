"""The fitted parameters as one vector θ, and θ -> ReaxFF parameter tables as a traced function
(so that the engine differentiates a loss with respect to θ)."""
from __future__ import annotations

import numpy as np

import reaxgrad.core.numpy as jnp
from reaxgrad.forcefields.ffield import ForceField, to_params
from reaxgrad.forcefields.ffield_tables import derive
from reaxgrad.forcefields.params_file import (
    Param,
    apply_params,
    map_params,
    param_values,
    scatter_params,
    scatter_plan,
)


class ParameterMap:
    """θ (one value per params-file line, raw ffield units) <-> tables of ``to_params``."""

    def __init__(self, ff: ForceField, params: list[Param] | str):
        self.ff = ff
        resolved = isinstance(params, list) and all(isinstance(p, Param) for p in params)
        self.params = params if resolved else map_params(ff, params)
        self.base = to_params(ff)  # reaxgrad Arrays: gatherable by traced indices
        self.plan = scatter_plan(self.params)
        self.initial = param_values(ff, self.params)
        self.bounds = np.array([(p.lower, p.upper) for p in self.params], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.params)

    def tables(self, theta):
        """The parameter tables with θ set (θ may be traced)."""
        out = dict(self.base)
        theta = jnp.asarray(theta)
        for leaf, (index, which, scale) in self.plan.items():
            out[leaf] = jnp.asarray(self.base[leaf]).at[index].set(scale * theta[which])
        out.update(derive(out, xp=jnp))
        return out

    def numpy_tables(self, theta) -> dict:
        """The same tables as NumPy arrays (for list building)."""
        return scatter_params(self.base, self.params, theta)

    def forcefield(self, theta) -> ForceField:
        """A copy of the force field with θ written in, ready for ``write_ffield``."""
        return apply_params(self.ff, self.params, theta)

    def labels(self) -> list[str]:
        """'section entry number' of every parameter, as in the params file."""
        return [" ".join(str(k) for k in p.key) for p in self.params]
