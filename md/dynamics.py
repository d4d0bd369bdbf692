"""MD integrators as (init, step) pairs over a state record, in LAMMPS `real` units.

``forces(positions, cell) -> Forces`` is any host function (``md.forces`` wraps ReaxFF).
Arrays may carry leading replica axes: positions (..., N, 3), cell (..., 3, 3), masses (N,);
targets (temperature, pressure) broadcast over the replicas. Every step is plain NumPy around
one force call, so a resumed run that restores the state reproduces the same numbers.

Integrators
-----------
``nve``: velocity Verlet (LAMMPS ``fix nve``, operation for operation).
``langevin``: BAOAB (Leimkuhler–Matthews), friction 1/damping; exact Ornstein–Uhlenbeck step.
``nose_hoover``: Nosé–Hoover chain NVT (Martyna–Klein–Tuckerman), Trotter half steps around
  velocity Verlet; masses Q1 = dof·kT·τ², Qk = kT·τ² as LAMMPS ``fix nvt``.
``berendsen``: velocity rescaling toward T0 with time constant τ (``fix temp/berendsen``).
``berendsen_npt``: the above plus Berendsen's barostat on the exact pressure tensor
  (virial from dE/dstrain): isotropic (the cell scaled uniformly) or anisotropic (a symmetric
  deformation from the full tensor, triclinic cells included).

Observables: temperature with dof = 3N - 3 (total momentum is conserved; LAMMPS's default),
pressure tensor P = (Σ m v⊗v − dE/dε) / V in atm.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from .units import BOLTZ, FTM2V, MVV2E, NKTV2P

__all__ = [
    "Forces", "MDState", "Integrator", "nve", "langevin", "nose_hoover", "berendsen",
    "berendsen_npt", "kinetic_energy", "temperature", "pressure_tensor", "degrees_of_freedom",
    "maxwell_boltzmann", "ENSEMBLES",
]


class Forces(NamedTuple):
    """One force evaluation (kcal/mol, kcal/mol/Å): energy (...), forces (..., N, 3),
    virial dE/dstrain (..., 3, 3), charges (..., N), per-term energies (dict)."""

    energy: np.ndarray
    forces: np.ndarray
    virial: np.ndarray
    charges: np.ndarray
    terms: dict


@dataclass
class MDState:
    """Where a run stands. Velocities in Å/fs, masses in g/mol, time in fs; ``forces`` is the
    evaluation at ``positions``; ``extra`` holds integrator variables (thermostat chains, the
    Langevin generator)."""

    positions: np.ndarray
    velocities: np.ndarray
    masses: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    forces: Forces
    step: int = 0
    time: float = 0.0
    extra: dict = field(default_factory=dict)


class Integrator(NamedTuple):
    init: Callable
    step: Callable


def degrees_of_freedom(n_atoms: int) -> int:
    return max(3 * n_atoms - 3, 1)


def kinetic_energy(velocities, masses):
    """(...,) kinetic energies in kcal/mol."""
    return 0.5 * MVV2E * np.einsum("...nd,n->...", velocities * velocities, masses)


def temperature(velocities, masses):
    n = velocities.shape[-2]
    return 2.0 * kinetic_energy(velocities, masses) / (degrees_of_freedom(n) * BOLTZ)


def volume(cell):
    return np.abs(np.linalg.det(cell))


def pressure_tensor(state: MDState):
    """(..., 3, 3) pressure tensor in atm (periodic cells)."""
    v, m = state.velocities, state.masses
    kinetic = MVV2E * np.einsum("...na,...nb,n->...ab", v, v, m)
    return (kinetic - state.forces.virial) / volume(state.cell)[..., None, None] * NKTV2P


def pressure(state: MDState):
    """(...,) scalar pressure in atm, NaN without a fully periodic cell."""
    if not np.all(state.pbc):
        return np.full(np.shape(state.forces.energy), np.nan)
    return np.trace(pressure_tensor(state), axis1=-2, axis2=-1) / 3.0


def maxwell_boltzmann(masses, temperature_k, rng, shape=()):
    """Velocities (shape + (N, 3)) at exactly ``temperature_k`` with zero total momentum (as
    LAMMPS ``velocity create ... mom yes`` then scaled to the target)."""
    masses = np.asarray(masses, dtype=float)
    n = len(masses)
    v = rng.standard_normal(tuple(shape) + (n, 3)) * np.sqrt(BOLTZ / (masses * MVV2E))[:, None]
    v -= np.einsum("...nd,n->...d", v, masses)[..., None, :] / masses.sum()
    t = temperature(v, masses) if n > 1 else np.ones(shape)
    target = np.broadcast_to(np.asarray(temperature_k, dtype=float), np.shape(t))
    scale = np.sqrt(np.divide(target, t, out=np.zeros_like(t), where=t > 0))
    return v * np.asarray(scale)[..., None, None]


def _kick(v, f, masses, dt):
    """Half-step velocity update, LAMMPS's dtf = 0.5 dt ftm2v."""
    return v + (0.5 * dt * FTM2V) * f / masses[:, None]


def _init(forces_fn, positions, velocities, masses, cell, pbc, extra=None):
    positions = np.asarray(positions, dtype=float)
    cell = np.asarray(cell, dtype=float)
    velocities = np.zeros_like(positions) if velocities is None else np.asarray(
        velocities, dtype=float)
    masses = np.asarray(masses, dtype=float)
    if np.any(~np.isfinite(masses)) or np.any(masses <= 0):
        raise ValueError("masses must be positive and finite")
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
    return MDState(positions, velocities, masses, cell, pbc,
                   forces_fn(positions, cell), extra=dict(extra or {}))


def _verlet(forces_fn, state: MDState, dt, drift=None):
    """Velocity Verlet; ``drift(x, v, cell) -> (x, cell)`` replaces the position update."""
    v = _kick(state.velocities, state.forces.forces, state.masses, dt)
    if drift is None:
        x, cell = state.positions + dt * v, state.cell
    else:
        x, cell = drift(state.positions, v, state.cell)
    f = forces_fn(x, cell)
    v = _kick(v, f.forces, state.masses, dt)
    return replace(state, positions=x, velocities=v, cell=cell, forces=f, step=state.step + 1,
                   time=state.time + dt)


def nve(forces_fn, dt) -> Integrator:
    def init(positions, velocities, masses, cell, pbc):
        return _init(forces_fn, positions, velocities, masses, cell, pbc)

    def step(state):
        return _verlet(forces_fn, state, dt)

    return Integrator(init, step)


def _target(value, state):
    """A per-replica target broadcast against (..., N, 3) arrays."""
    return np.asarray(value, dtype=float)[..., None, None]


def langevin(forces_fn, dt, temperature_k, *, damping=100.0, seed=None) -> Integrator:
    """BAOAB Langevin dynamics at ``temperature_k`` with friction 1/``damping`` (fs)."""
    if damping <= 0:
        raise ValueError("damping must be > 0 fs")
    c1 = np.exp(-dt / damping)

    def init(positions, velocities, masses, cell, pbc):
        return _init(forces_fn, positions, velocities, masses, cell, pbc,
                     {"rng": np.random.default_rng(seed)})

    def step(state):
        m = state.masses[:, None]
        v = _kick(state.velocities, state.forces.forces, state.masses, dt)
        x = state.positions + 0.5 * dt * v
        sigma = np.sqrt((1.0 - c1 * c1) * BOLTZ * _target(temperature_k, state) / (m * MVV2E))
        v = c1 * v + sigma * state.extra["rng"].standard_normal(v.shape)
        x = x + 0.5 * dt * v
        f = forces_fn(x, state.cell)
        v = _kick(v, f.forces, state.masses, dt)
        return replace(state, positions=x, velocities=v, forces=f, step=state.step + 1,
                       time=state.time + dt)

    return Integrator(init, step)


def _nhc_half_step(state, v, dt, temperature_k, damping):
    """Propagate the chain and scale velocities over dt/2 (MTK Trotter factor, one
    sub-step). Returns the new velocities and chain variables."""
    xi, v_xi = state.extra["xi"].copy(), state.extra["v_xi"].copy()  # (..., M)
    n = state.masses.shape[0]
    dof = degrees_of_freedom(n)
    kt = BOLTZ * np.asarray(temperature_k, dtype=float)[..., None]
    q = kt * damping**2 * np.ones(v_xi.shape[-1])
    q[..., 0] *= dof
    ke2 = 2.0 * kinetic_energy(v, state.masses)
    big_m = v_xi.shape[-1]

    def force(k, ke2):
        if k == 0:
            return (ke2 - dof * kt[..., 0]) / q[..., 0]
        return (q[..., k - 1] * v_xi[..., k - 1] ** 2 - kt[..., 0]) / q[..., k]

    def damp(k):
        return np.exp(-v_xi[..., k + 1] * dt / 8.0) if k + 1 < big_m else 1.0

    for k in reversed(range(big_m)):
        v_xi[..., k] *= damp(k)
        v_xi[..., k] += force(k, ke2) * dt / 4.0
        v_xi[..., k] *= damp(k)
    scale = np.exp(-v_xi[..., 0] * dt / 2.0)
    v = v * scale[..., None, None]
    ke2 = ke2 * scale * scale
    xi += v_xi * dt / 2.0
    for k in range(big_m):
        v_xi[..., k] *= damp(k)
        v_xi[..., k] += force(k, ke2) * dt / 4.0
        v_xi[..., k] *= damp(k)
    return v, xi, v_xi


def nose_hoover(forces_fn, dt, temperature_k, *, damping=100.0, chain=3) -> Integrator:
    """Nosé–Hoover chain NVT (``chain`` thermostats, period ~``damping`` fs)."""
    if damping <= 0 or chain < 1:
        raise ValueError("damping must be > 0 fs and chain >= 1")

    def init(positions, velocities, masses, cell, pbc):
        batch = np.shape(positions)[:-2]
        zeros = np.zeros(batch + (int(chain),))
        return _init(forces_fn, positions, velocities, masses, cell, pbc,
                     {"xi": zeros, "v_xi": zeros.copy()})

    def step(state):
        v, xi, v_xi = _nhc_half_step(state, state.velocities, dt, temperature_k, damping)
        state = replace(state, velocities=v, extra={**state.extra, "xi": xi, "v_xi": v_xi})
        state = _verlet(forces_fn, state, dt)
        v, xi, v_xi = _nhc_half_step(state, state.velocities, dt, temperature_k, damping)
        return replace(state, velocities=v, extra={**state.extra, "xi": xi, "v_xi": v_xi})

    return Integrator(init, step)


def nose_hoover_energy(state: MDState, temperature_k, damping):
    """The chain's energy (kcal/mol): the Nosé–Hoover conserved quantity minus the
    system's total energy."""
    n = state.masses.shape[0]
    dof = degrees_of_freedom(n)
    kt = BOLTZ * np.asarray(temperature_k, dtype=float)[..., None]
    xi, v_xi = state.extra["xi"], state.extra["v_xi"]
    q = kt * damping**2 * np.ones(v_xi.shape[-1])
    q[..., 0] *= dof
    return (0.5 * q * v_xi**2).sum(-1) + dof * kt[..., 0] * xi[..., 0] + (
        kt * xi[..., 1:]).sum(-1)


def _berendsen_scale(v, masses, dt, temperature_k, damping):
    t = temperature(v, masses)
    target = np.asarray(temperature_k, dtype=float)
    ratio = np.divide(target, t, out=np.ones_like(t), where=t > 0)
    lam = np.sqrt(np.maximum(1.0 + dt / damping * (ratio - 1.0), 0.0))
    return v * np.asarray(lam)[..., None, None]


def berendsen(forces_fn, dt, temperature_k, *, damping=100.0) -> Integrator:
    """Berendsen NVT: velocity Verlet, then velocities scaled toward ``temperature_k``."""
    if damping <= 0:
        raise ValueError("damping must be > 0 fs")

    def init(positions, velocities, masses, cell, pbc):
        return _init(forces_fn, positions, velocities, masses, cell, pbc)

    def step(state):
        state = _verlet(forces_fn, state, dt)
        return replace(state, velocities=_berendsen_scale(
            state.velocities, state.masses, dt, temperature_k, damping))

    return Integrator(init, step)


def berendsen_npt(forces_fn, dt, temperature_k, pressure_atm, *, damping=100.0,
                  pressure_damping=1000.0, bulk_modulus=1.0e4,
                  anisotropic=False) -> Integrator:
    """Berendsen NPT: Berendsen NVT plus cell and positions scaled every step by
    mu = 1 - dt/(3 τ_P) (P0 - P)/B (isotropic: P the scalar pressure; anisotropic: the
    symmetric pressure tensor), B the assumed bulk modulus (atm)."""
    if damping <= 0 or pressure_damping <= 0 or bulk_modulus <= 0:
        raise ValueError("damping, pressure_damping and bulk_modulus must be > 0")

    def init(positions, velocities, masses, cell, pbc):
        if not np.all(pbc):
            raise ValueError("NPT needs a cell periodic in all three directions")
        return _init(forces_fn, positions, velocities, masses, cell, pbc)

    def step(state):
        p = pressure_tensor(state)
        p0 = np.asarray(pressure_atm, dtype=float)[..., None, None] * np.eye(3)
        if anisotropic:
            p = 0.5 * (p + np.swapaxes(p, -1, -2))
        else:
            p = np.trace(p, axis1=-2, axis2=-1)[..., None, None] / 3.0 * np.eye(3)
        mu = np.eye(3) - dt / (3.0 * pressure_damping) * (p0 - p) / bulk_modulus

        def drift(x, v, cell):
            return (x + dt * v) @ mu, cell @ mu

        state = _verlet(forces_fn, state, dt, drift)
        return replace(state, velocities=_berendsen_scale(
            state.velocities, state.masses, dt, temperature_k, damping))

    return Integrator(init, step)


ENSEMBLES = ("nve", "langevin", "nose-hoover", "berendsen", "npt")
