"""Per-structure predictions of a batch (energies, charges, forces) as traced functions of the
parameter tables: what the loss and the in-loop relaxation differentiate.

Conventions (``forcefields.reaxff.charges``): "jaxreaxff" (default for fitting: JAX-ReaxFF's
constants, forces the total derivative through the charge solve, as its FORCES items are
predicted), "lammps" (fixed-charge forces, LAMMPS's constants), "consistent".
"""
from __future__ import annotations

import numpy as np

import reaxgrad.core as rg
import reaxgrad.core.numpy as jnp
from reaxgrad.core.ops import segment_sum
from reaxgrad.forcefields.reaxff.charges import electrostatic_energy
from reaxgrad.forcefields.reaxff.energy import BONDED_TERMS, bonded_energy_terms
from reaxgrad.forcefields.reaxff.geometry import CARTESIAN

IDENTITY_CELL = CARTESIAN  # batch shifts are Cartesian vectors (optimize.batch)


def batch_energies(positions, params, lists, total_charge, convention="jaxreaxff"):
    """(energy (S,) kcal/mol, charges (N,) e) of every structure of a batch."""
    terms = bonded_energy_terms(positions, IDENTITY_CELL, params, lists)
    el = electrostatic_energy(positions, IDENTITY_CELL, params, lists.types, lists,
                              total_charge, method="qeq", convention=convention)
    energy = el["ep"] + el["eqeq"]
    for name in BONDED_TERMS:
        energy = energy + terms[name]
    return energy, el["q"]


def batch_energies_and_forces(positions, params, lists, total_charge, convention="jaxreaxff"):
    """(energy (S,), charges (N,), forces (N, 3) = -dE/dx in kcal/mol/Å)."""

    def total(x):
        e, q = batch_energies(x, params, lists, total_charge, convention)
        return jnp.sum(e), (e, q)

    (_, (energy, charges)), grad = rg.value_and_grad(total, has_aux=True)(positions)
    return energy, charges, -grad


def restraint_energy(positions, restraints, count):
    """(S,) restraint energies, JAX-ReaxFF's form f1·(1 − exp(−f2·Δ²)) per restraint (Δ in Å
    for bonds, radians for angles and torsions, angles' periodicity respected); atoms are
    batch-global indices; no periodic images (as JAX-ReaxFF)."""
    total = jnp.zeros(count)
    for kind, r in restraints.items():
        if len(r["structure"]) == 0:
            continue
        p = [positions[a] for a in r["atoms"].T]
        if kind == "bond":
            value = _length(p[0] - p[1])
            delta = value - r["target"]
        else:
            value = _angle(*p) if kind == "angle" else _torsion(*p)
            delta = _periodic_difference(value, r["target"]) * (np.pi / 180.0)
        e = r["force1"] * (1.0 - jnp.exp(-r["force2"] * delta * delta))
        total = total + segment_sum(e, r["structure"], count)
    return total


def _length(d):
    return jnp.sqrt(jnp.sum(d * d, axis=-1))


def _angle(p1, p2, p3):
    """Angle 1-2-3 in degrees."""
    a, b = p1 - p2, p3 - p2
    c = jnp.sum(a * b, axis=-1) / (_length(a) * _length(b))
    return jnp.arccos(jnp.clip(c, -1.0 + 1e-12, 1.0 - 1e-12)) * (180.0 / np.pi)


def _torsion(p1, p2, p3, p4):
    """Dihedral 1-2-3-4 in degrees, in (-180, 180]."""
    b0, b1, b2 = p1 - p2, p3 - p2, p4 - p3
    b1 = b1 / _length(b1)[:, None]
    v = b0 - jnp.sum(b0 * b1, axis=-1)[:, None] * b1
    w = b2 - jnp.sum(b2 * b1, axis=-1)[:, None] * b1
    x = jnp.sum(v * w, axis=-1)
    y = jnp.sum(jnp.cross(b1, v) * w, axis=-1)
    return jnp.arctan2(y, x) * (180.0 / np.pi)


def _periodic_difference(a, b):
    """|a − b| in degrees, folded into [0, 180]."""
    d = jnp.remainder(a - b, 360.0)
    return jnp.where(d < 180.0, d, 360.0 - d)
