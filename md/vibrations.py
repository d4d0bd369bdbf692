"""Exact Hessians of ReaxFF and harmonic normal modes.

`hessian(source, atoms)` differentiates the ReaxFF energy twice with respect to the positions
through the engine (forward over reverse mode, jit-compiled and cached per list-capacity
bucket, like the model's energy and forces), with the interaction lists built once at the
given geometry. No finite differences: the result is exact to rounding.

What is differentiated depends on the charge convention:

- "consistent" (the calculator's default): the Hessian of the reported energy, the charges
  differentiated through the dense charge solve (forces are exact derivatives of the energy,
  so this is also the Jacobian of minus the forces). Symmetric.
- "lammps": the Jacobian of minus LAMMPS's forces, -dF/dx, where F is the derivative of the
  energy at the charges held fixed and the charges then follow the geometry (QEq/EEM or
  ACKS2 solved with LAMMPS's constants, differentiated through the solve). This is what
  finite differences of LAMMPS's (or the "lammps" calculator's) forces converge to. For
  QEq/EEM it is symmetric too: the charge response enters as -(J_x q)ᵀ A⁻¹ (J_x q).
- charge_method=None: the Hessian of the energy at the given (fixed) charges.

The charge solve is always the dense one here ("cg" refuses second derivatives), so the
cost is O(n³) in the charge solve and O(n²) in memory for the result, fine for molecules and
crystal cells of up to a few hundred atoms.

`normal_modes(hessian, masses)` diagonalises the mass-weighted Hessian. Frequencies are in
cm^-1; an imaginary frequency (negative eigenvalue) is reported as a *negative* real number
(ASE returns complex numbers instead; `-f` here is ASE's `f*1j`). Modes are sorted by
eigenvalue, ascending, as ASE sorts them (imaginary first, then the near-zero translations and
rotations, then the vibrations).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import units

import reaxgrad.core as rg
from reaxgrad.forcefields.reaxff.charges import equilibrate
from reaxgrad.forcefields.reaxff.coulomb import (
    acks2_pair_energy,
    charge_self_energy,
    coulomb_energy,
)
from reaxgrad.forcefields.reaxff.energy import bonded_energy
from reaxgrad.forcefields.reaxff.model import TERMS, ReaxFF, energy_terms

__all__ = ["VibrationResult", "hessian", "normal_modes", "vibrations"]

KCAL_MOL = units.kcal / units.mol  # eV per kcal/mol
# sqrt(eV / (Å² amu)) -> ħω in eV
_HBAR_OMEGA = units._hbar * 1e10 / np.sqrt(units._e * units._amu)


def _total_energy(positions, cell, params, lists, total_charge, charges, method, convention):
    terms, _, _ = energy_terms(positions, cell, params, lists, total_charge,
                               charge_method=method, convention=convention, charges=charges,
                               solver="direct")
    energy = terms[TERMS[0]]
    for name in TERMS[1:]:
        energy = energy + terms[name]
    return energy


def _lammps_gradient(positions, cell, params, lists, total_charge, method):
    """dE/dx at the charges held fixed (LAMMPS's minus forces), with the charges (and ACKS2
    potentials) solved with LAMMPS's constants as differentiable functions of positions."""
    sol = equilibrate(positions, cell, params, lists.types, lists, total_charge, method,
                      "jaxreaxff", full_output=True)  # LAMMPS's matrix, not stopped
    q, u = sol["q"], sol["u"]

    def energy(x):
        e = bonded_energy(x, cell, params, lists)
        e = e + coulomb_energy(x, cell, q, params, lists.types, lists)
        e = e + charge_self_energy(q, params, lists.types, potentials=u)
        if u is not None:
            e = e + acks2_pair_energy(x, cell, u, params, lists.types, lists)
        return e

    return rg.grad(energy)(positions)


def _hessian_impl(positions, cell, params, lists, total_charge, charges, method, convention):
    if method is not None and convention == "lammps":
        return rg.jacfwd(_lammps_gradient)(positions, cell, params, lists, total_charge,
                                           method)
    return rg.jacfwd(rg.grad(_total_energy))(positions, cell, params, lists, total_charge,
                                             charges, method, convention)


_hessian_jit = rg.jit(_hessian_impl, static_argnums=(6, 7))


def _settings(source, atoms, convention, total_charge):
    """(model, charge method, convention, total charge, charges) of a calculator or model."""
    from reaxgrad.md.calculator import ReaxFFCalculator

    if isinstance(source, ReaxFFCalculator):
        model = source.model
        convention = convention or source.parameters["convention"]
        if total_charge is None:
            total_charge = source.total_charge(atoms)
    elif isinstance(source, ReaxFF):
        model = source
        convention = convention or model.convention
        if total_charge is None:
            total_charge = float(atoms.info.get("charge", 0.0))
    else:
        raise TypeError(f"hessian() needs a ReaxFFCalculator or a ReaxFF model, got "
                        f"{type(source).__name__}")
    if convention not in ("consistent", "lammps"):
        raise ValueError(f"convention must be 'consistent' or 'lammps', got {convention!r}")
    charges = None
    if model.charge_method is None:
        charges = np.asarray(atoms.get_initial_charges(), dtype=np.float64)
    return model, model.charge_method, convention, float(total_charge), charges


def hessian(source, atoms, *, convention=None, total_charge=None) -> np.ndarray:
    """The exact Hessian (3N, 3N) of the ReaxFF energy in eV/Å^2, rows and columns ordered
    atom 0 x, y, z, atom 1 x, ... (the layout of ASE's Vibrations).

    source: a `ReaxFFCalculator` (its force field, charge method, control, convention and
    total charge) or a `ReaxFF` model (its settings; total charge atoms.info["charge"] or 0).
    convention: None (the source's own), "consistent" or "lammps" (module docstring).
    total_charge: overrides the source's. With charge_method=None the charges are
    `atoms.get_initial_charges()`. Periodic cells give the Γ-point force-constant matrix (an
    atom's images move with it).
    """
    model, method, convention, total_charge, charges = _settings(source, atoms, convention,
                                                                 total_charge)
    n = len(atoms)
    if n == 0:
        return np.zeros((0, 0))
    positions = np.asarray(atoms.positions, dtype=np.float64)
    if not np.isfinite(positions).all():
        raise ValueError("hessian(): atoms have non-finite positions")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    types = model.types_of(atoms.get_chemical_symbols(), atoms.get_chemical_formula())
    from reaxgrad.forcefields.reaxff.model import _check_overlaps

    _check_overlaps(positions, cell, pbc, atoms.get_chemical_formula())
    lists = model.lists(positions, cell, pbc, types)
    h = _hessian_jit(positions, cell, model.params, lists, np.float64(total_charge), charges,
                     method, convention)
    return np.asarray(h, dtype=np.float64).reshape(3 * n, 3 * n) * KCAL_MOL


def normal_modes(hessian, masses):
    """(frequencies, modes) of a Hessian (3N, 3N) in eV/Å^2 and masses (N,) in amu.

    frequencies: (3N,) in cm^-1, sorted by eigenvalue of the mass-weighted Hessian
    M^-1/2 H M^-1/2 (ascending); imaginary ones (negative eigenvalues) as negative numbers.
    modes: (3N, N, 3) its orthonormal eigenvectors (mass-weighted coordinates), mode k in
    modes[k]; the Cartesian displacement pattern of mode k is modes[k] / sqrt(masses)[:, None].
    The Hessian is symmetrised first, (H + Hᵀ)/2.
    """
    h = np.asarray(hessian, dtype=np.float64)
    m = np.asarray(masses, dtype=np.float64).reshape(-1)
    n = len(m)
    if h.shape != (3 * n, 3 * n):
        raise ValueError(f"hessian has shape {h.shape}, expected {(3 * n, 3 * n)} for "
                         f"{n} masses")
    if n and not (np.all(np.isfinite(m)) and np.all(m > 0)):
        raise ValueError(f"masses must be positive and finite, got {m.tolist()}")
    if not np.isfinite(h).all():
        raise ValueError("the Hessian has non-finite entries")
    w = np.repeat(1.0 / np.sqrt(m), 3)
    mw = 0.5 * (h + h.T) * w[:, None] * w[None, :]
    eigenvalues, vectors = np.linalg.eigh(mw)
    energies = _HBAR_OMEGA * np.sign(eigenvalues) * np.sqrt(np.abs(eigenvalues))  # eV
    frequencies = energies / units.invcm
    return frequencies, vectors.T.reshape(3 * n, n, 3)


@dataclass
class VibrationResult:
    """Harmonic analysis of one structure.

    hessian: (3N, 3N) eV/Å^2; masses: (N,) amu; frequencies: (3N,) cm^-1, ascending by
    eigenvalue, imaginary ones negative; modes: (3N, N, 3) orthonormal mass-weighted
    eigenvectors (see `normal_modes`); symbols: the atoms' elements; convention: the charge
    convention the Hessian was taken in.
    """

    hessian: np.ndarray
    masses: np.ndarray
    frequencies: np.ndarray
    modes: np.ndarray
    symbols: list = field(default_factory=list)
    convention: str = "consistent"

    @property
    def energies(self) -> np.ndarray:
        """ħω per mode in eV (negative for imaginary modes)."""
        return self.frequencies * units.invcm

    @property
    def displacements(self) -> np.ndarray:
        """(3N, N, 3) Cartesian displacement patterns modes / sqrt(m), each normalised to a
        unit vector."""
        d = self.modes / np.sqrt(self.masses)[None, :, None]
        norm = np.sqrt(np.sum(d * d, axis=(1, 2)))
        return d / np.where(norm > 0, norm, 1.0)[:, None, None]

    def is_imaginary(self) -> np.ndarray:
        return self.frequencies < 0

    def zero_point_energy(self) -> float:
        """½ Σ ħω over the real modes, in eV (imaginary modes count zero, as in ASE)."""
        return float(0.5 * np.sum(np.clip(self.energies, 0.0, None)))

    def table(self) -> str:
        """ASE-style table: index, meV, cm^-1, imaginary values marked with "i"."""
        lines = ["  #    energy (meV)   frequency (cm^-1)", "-" * 40]
        for k, (e, f) in enumerate(zip(self.energies, self.frequencies)):
            mark = "i" if f < 0 else " "
            lines.append(f"{k:3d} {abs(e) * 1000:14.4f}{mark} {abs(f):17.4f}{mark}")
        lines.append("-" * 40)
        lines.append(f"zero-point energy: {self.zero_point_energy():.6f} eV")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready dict with the units stated."""
        return {
            "units": {"frequencies": "cm^-1 (imaginary as negative numbers)",
                      "energies": "eV", "zero_point_energy": "eV", "hessian": "eV/A^2",
                      "masses": "amu",
                      "modes": "orthonormal mass-weighted eigenvectors (3N, N, 3)"},
            "convention": self.convention,
            "symbols": list(self.symbols),
            "masses": np.asarray(self.masses).tolist(),
            "frequencies": np.asarray(self.frequencies).tolist(),
            "energies": np.asarray(self.energies).tolist(),
            "zero_point_energy": self.zero_point_energy(),
            "modes": np.asarray(self.modes).tolist(),
            "hessian": np.asarray(self.hessian).tolist(),
        }


def vibrations(source, atoms, *, masses=None, convention=None,
               total_charge=None) -> VibrationResult:
    """`hessian` then `normal_modes` (masses default to atoms.get_masses())."""
    h = hessian(source, atoms, convention=convention, total_charge=total_charge)
    m = atoms.get_masses() if masses is None else np.asarray(masses, dtype=np.float64)
    frequencies, modes = normal_modes(h, m)
    used = convention or (source.parameters["convention"] if hasattr(source, "parameters")
                          else source.convention)
    return VibrationResult(hessian=h, masses=np.asarray(m, dtype=np.float64),
                           frequencies=frequencies, modes=modes,
                           symbols=atoms.get_chemical_symbols(), convention=used)
