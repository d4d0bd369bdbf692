"""Batched structure minimizers: ASE's FIRE and LBFGS over many structures per call.

Force-field fitting relaxes many small molecules inside every loss evaluation, and one
compiled energy/gradient call over a padded batch costs far less than one call per molecule.
These are plain NumPy host loops around a caller's batched ``value_and_grad(x) -> (energy (S,),
gradient (S, N, 3))``; they know nothing about ReaxFF.

Each structure follows, step for step, the trajectory that ASE's own optimizer
(``ase.optimize.FIRE`` / ``ase.optimize.LBFGS``, ASE 3.29) gives it alone: every per-structure
quantity (velocity, time step, mixing factor, L-BFGS history) carries a leading batch axis, so
structures never influence each other. A structure stops moving once it has converged (the
largest force norm over its real atoms is below ``fmax``, strictly, as ASE) or used its step
budget; the loop ends when all have stopped. Padding atoms (``mask`` False) never move and
their gradient is ignored.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MinimizeResult", "fire", "lbfgs"]


@dataclass
class MinimizeResult:
    """Outcome of a batched minimization (leading axis S dropped for a single (N, 3) input)."""

    positions: np.ndarray  # (S, N, 3) final positions
    energy: np.ndarray  # (S,) energy at the final positions (last evaluation)
    gradient: np.ndarray  # (S, N, 3) gradient at the final positions, zero on padding
    steps: np.ndarray  # (S,) int, steps taken per structure
    converged: np.ndarray  # (S,) bool
    evaluations: int  # number of calls of the batched function


def _dot(u, v):
    """Per-structure inner product of (S, ...) arrays (batched BLAS dot, so that rounding
    matches ASE's ``np.dot`` / ``np.vdot``)."""
    u, v = u.reshape(len(u), 1, -1), v.reshape(len(v), -1, 1)
    return (u @ v)[:, 0, 0]


def _max_force(gradient):
    """Largest per-atom force norm of each structure, (S,)."""
    return np.sqrt(np.sum(gradient * gradient, axis=-1)).max(axis=-1, initial=0.0)


def _minimize(value_and_grad, positions, mask, fmax, max_steps, steps, step):
    """Shared run loop (ASE's ``Dynamics.irun``, per structure).

    ``step(x, g, active)`` returns the displacement of every structure (zero where not
    active) and updates its own per-structure state only where ``active``.
    """
    single = np.ndim(positions) == 2
    x = np.array(positions, dtype=float, ndmin=3)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"positions must have shape (S, N, 3) or (N, 3), got {x.shape}")
    n_structures = x.shape[0]
    mask = np.ones(x.shape[:2], bool) if mask is None else np.array(mask, bool, ndmin=2)
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match positions {x.shape}")
    budget = np.full(n_structures, int(max_steps))
    if steps is not None:
        steps = np.broadcast_to(np.asarray(steps), (n_structures,))
        if np.any(steps < 0):
            raise ValueError("per-structure step budgets must be >= 0")
        budget = np.minimum(budget, steps.astype(int))
    if single:
        batch_fn = value_and_grad
        value_and_grad = lambda y: tuple(np.asarray(a)[None] for a in batch_fn(y[0]))

    def evaluate(x):
        energy, gradient = value_and_grad(x)
        energy = np.asarray(energy, dtype=float).reshape(n_structures)
        gradient = np.where(mask[..., None], np.asarray(gradient, dtype=float), 0.0)
        return energy, gradient

    energy, gradient = evaluate(x)
    evaluations = 1
    taken = np.zeros(n_structures, int)
    converged = _max_force(gradient) < fmax
    active = ~converged & (taken < budget)
    while active.any():
        dx = step(x, gradient, active)
        x = np.where(mask[..., None] & active[:, None, None], x + dx, x)
        new_energy, new_gradient = evaluate(x)
        evaluations += 1
        energy = np.where(active, new_energy, energy)
        gradient = np.where(active[:, None, None], new_gradient, gradient)
        taken += active
        converged = _max_force(gradient) < fmax
        active = ~converged & (taken < budget)
    result = MinimizeResult(x, energy, gradient, taken, converged, evaluations)
    if single:
        for name in ("positions", "energy", "gradient", "steps", "converged"):
            setattr(result, name, getattr(result, name)[0])
    return result


def fire(value_and_grad, positions, mask=None, *, fmax=0.05, max_steps=200, steps=None,
         dt=0.1, max_dt=1.0, max_move=0.2, n_min=5, f_inc=1.1, f_dec=0.5, a_start=0.1,
         f_a=0.99, a=0.1) -> MinimizeResult:
    """FIRE (Bitzek et al. 2006) exactly as ``ase.optimize.FIRE``, for a batch of structures.

    Arguments map to ASE's: ``max_dt`` = dtmax, ``max_move`` = maxstep (a cap on the norm of
    a structure's whole displacement vector, as in ASE's FIRE), ``n_min`` = Nmin, ``f_inc`` =
    finc, ``f_dec`` = fdec, ``a_start`` = astart, ``f_a`` = fa, ``a`` = the initial mixing
    factor. ASE's ``downhill_check`` is not offered. ``positions`` (S, N, 3) or (N, 3), in
    which case ``value_and_grad`` takes (N, 3) and returns (scalar, (N, 3)); ``mask`` (S, N)
    marks real atoms (default: all); ``steps`` (S,) per-structure budgets, capped by
    ``max_steps``.
    """
    state = {}

    def step(x, gradient, active):
        force = -gradient
        n_structures = len(x)
        if not state:  # first step: zero velocity, no mixing (ASE's `vel is None`)
            state.update(v=np.zeros_like(x), dt=np.full(n_structures, float(dt)),
                         a=np.full(n_structures, float(a)), n=np.zeros(n_structures, int))
        else:
            v, dt_, a_, n = state["v"], state["dt"], state["a"], state["n"]
            downhill = _dot(force, v) > 0.0
            with np.errstate(divide="ignore", invalid="ignore"):
                mixed = ((1.0 - a_)[:, None, None] * v
                         + a_[:, None, None] * force / np.sqrt(_dot(force, force))[:, None, None]
                         * np.sqrt(_dot(v, v))[:, None, None])
            up, reset = active & downhill, active & ~downhill
            grow = up & (n > n_min)
            state["v"] = np.where(up[:, None, None], mixed, np.where(reset[:, None, None], 0, v))
            state["dt"] = np.where(grow, np.minimum(dt_ * f_inc, max_dt),
                                   np.where(reset, dt_ * f_dec, dt_))
            state["a"] = np.where(grow, a_ * f_a, np.where(reset, a_start, a_))
            state["n"] = np.where(up, n + 1, np.where(reset, 0, n))
        dt_ = state["dt"][:, None, None]
        state["v"] = np.where(active[:, None, None], state["v"] + dt_ * force, state["v"])
        dr = dt_ * state["v"]
        norm = np.sqrt(_dot(dr, dr))[:, None, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            dr = np.where(norm > max_move, max_move * dr / norm, dr)
        return np.where(active[:, None, None], dr, 0.0)

    return _minimize(value_and_grad, positions, mask, fmax, max_steps, steps, step)


def lbfgs(value_and_grad, positions, mask=None, *, fmax=0.05, max_steps=200, steps=None,
          memory=100, max_move=0.2, damping=1.0, alpha=70.0) -> MinimizeResult:
    """L-BFGS exactly as ``ase.optimize.LBFGS`` (no line search), for a batch of structures.

    The two-loop recursion with initial inverse Hessian ``1/alpha``, the last ``memory``
    (s, y) pairs, and a step rescaled so that no atom moves more than ``max_move`` (ASE's
    maxstep), then multiplied by ``damping``. Like ASE, no curvature check: pairs with
    y.s < 0 are kept; a pair with y.s == 0 exactly (where ASE would divide by zero) is
    skipped. Since every moving structure has taken the same number of steps, the history
    is one list of (S, 3N) arrays; stopped structures' rows are never used again.
    Other arguments as in :func:`fire`.
    """
    if max_move > 1.0:
        raise ValueError(f"max_move={max_move} is much too large (ASE refuses > 1.0)")
    history = {"s": [], "y": [], "rho": [], "x0": None, "g0": None}

    def step(x, gradient, active):
        shape, n_structures = x.shape, len(x)
        xf, g = x.reshape(n_structures, -1), gradient.reshape(n_structures, -1)
        if history["x0"] is not None:
            s = np.where(active[:, None], xf - history["x0"], 0.0)
            y = np.where(active[:, None], g - history["g0"], 0.0)
            ys = _dot(y, s)
            rho = np.divide(1.0, ys, out=np.zeros_like(ys), where=active & (ys != 0.0))
            for key, value in (("s", s), ("y", y), ("rho", rho)):
                history[key].append(value)
                if len(history[key]) > memory:
                    history[key].pop(0)
        s, y, rho = history["s"], history["y"], history["rho"]
        q = g.copy()
        coefficients = [None] * len(s)
        for i in reversed(range(len(s))):
            coefficients[i] = rho[i] * _dot(s[i], q)
            q -= coefficients[i][:, None] * y[i]
        z = q * (1.0 / alpha)
        for i in range(len(s)):
            z += s[i] * (coefficients[i] - rho[i] * _dot(y[i], z))[:, None]
        p = -z.reshape(shape)
        longest = np.sqrt(np.sum(p * p, axis=-1)).max(axis=-1, initial=0.0)[:, None, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            dr = np.where(longest >= max_move, p * (max_move / longest), p) * damping
        history["x0"], history["g0"] = xf, g
        return np.where(active[:, None, None], dr, 0.0)

    return _minimize(value_and_grad, positions, mask, fmax, max_steps, steps, step)
