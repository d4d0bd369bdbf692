"""ReaxFF as LAMMPS computes it, as pure differentiable functions (see docs/reaxff_equations.md).

``build_lists`` (NumPy, outside traces) gives the interaction lists; ``bonded_energy_terms``
gives every energy term but Coulomb and the charge terms, as a function of (positions, cell,
params, lists) that the engine differentiates (forces, stress, parameter gradients).
"""

from .bond_order import BondOrders, bond_orders
from .energy import BONDED_TERMS, bonded_energy, bonded_energy_terms
from .lists import CONTROL_DEFAULTS, ReaxLists, build_lists
from .taper import taper, taper_coefficients

__all__ = [
    "BONDED_TERMS", "BondOrders", "CONTROL_DEFAULTS", "ReaxLists", "bond_orders",
    "bonded_energy", "bonded_energy_terms", "build_lists", "taper", "taper_coefficients",
]
