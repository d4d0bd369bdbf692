"""Implicit geometry gradients: the linearised relaxed geometry x* + J (θ − θ0) of
optimize.implicit has the derivative of the true minimum, checked against finite differences
of relaxations converged tightly (L-BFGS) at θ ± h; and the loss with it is consistent."""
import numpy as np
import pytest
from fit_helpers import assert_loss_gradient

from reaxgrad.datasets.trainset import TrainItem
from reaxgrad.forcefields.ffield import read_ffield
from reaxgrad.forcefields.params_file import ParamLine
from reaxgrad.optimize.data import structures_from_atoms
from reaxgrad.optimize.implicit import ImplicitGeometry
from reaxgrad.optimize.items import geometry_predictions
from reaxgrad.optimize.parameters import ParameterMap
from reaxgrad.optimize.problem import FitProblem
from reaxgrad.optimize.relax import Relaxer

KEYS = [(2, 3, 1), (3, 6, 1), (3, 6, 4), (5, 3, 2), (2, 2, 6)]  # O r_s, O-H De_s/p_be1, ...


@pytest.fixture(scope="module")
def setup(cho_ffield, small_structures):
    ff = read_ffield(cho_ffield)
    chosen = [a.copy() for a in small_structures if a.info["name"] in ("H2O", "CH3OH")]
    for a in chosen:
        a.info["relax_steps"] = 99999
        a.rattle(0.02, seed=1)
    structures = structures_from_atoms(chosen, ff)
    items = [TrainItem("DISTANCE", 0.01, (0.95,), ("H2O",), atoms=(0, 1), line=1),
             TrainItem("ANGLE", 1.0, (104.0,), ("H2O",), atoms=(1, 0, 2), line=2),
             TrainItem("TORSION", 2.0, (60.0,), ("CH3OH",), atoms=(3, 0, 1, 5), line=3),
             TrainItem("DISTANCE", 0.01, (1.40,), ("CH3OH",), atoms=(0, 1), line=4),
             TrainItem("ENERGY", 1.0, (-200.0,), ("H2O",), line=5)]
    pmap = ParameterMap(ff, [ParamLine(*k, 0.001, -1e6, 1e6) for k in KEYS])
    problem = FitProblem(pmap, structures, {"train": items})
    relaxer = Relaxer(problem)
    return problem, relaxer


def _relaxed_geometry(problem, relaxer, theta):
    relaxer.minimize(theta, 3000, 1e-7, "lbfgs")
    problem.refresh_lists(theta)
    return geometry_predictions(problem.tables["train"], problem.positions_all())


def test_linearised_minimum_matches_finite_differences(setup):
    problem, relaxer = setup
    theta = problem.pmap.initial.copy()
    base = _relaxed_geometry(problem, relaxer, theta)
    model = ImplicitGeometry(problem, relaxer).linearize(theta)
    x0, jac = model["x0"], model["jacobian"]
    for k in range(len(theta)):
        h = 1e-4 * max(1.0, abs(theta[k]))
        up, down = theta.copy(), theta.copy()
        up[k] += h
        down[k] -= h
        plus = _relaxed_geometry(problem, relaxer, up)
        minus = _relaxed_geometry(problem, relaxer, down)
        step = np.zeros_like(theta)
        step[k] = h
        linear = geometry_predictions(problem.tables["train"],
                                      x0 + (jac @ step).reshape(x0.shape))
        for cat in ("DISTANCE", "ANGLE", "TORSION"):
            fd = (np.asarray(plus[cat]) - np.asarray(minus[cat])) / (2 * h)
            lin = (np.asarray(linear[cat]) - np.asarray(base[cat])) / h
            scale = max(np.abs(fd).max(), 1e-3)
            assert np.abs(fd - lin).max() <= 2e-3 * scale + 1e-6, (KEYS[k], cat, fd, lin)
    _relaxed_geometry(problem, relaxer, theta)


def test_loss_with_the_geometry_model_is_consistent(setup):
    problem, relaxer = setup
    theta = problem.pmap.initial.copy()
    _relaxed_geometry(problem, relaxer, theta)
    fixed_loss, fixed_grad = problem.loss_and_grad(theta)
    problem.geometry_model = ImplicitGeometry(problem, relaxer).linearize(theta)
    try:
        loss, grad = problem.loss_and_grad(theta)
        assert loss == pytest.approx(fixed_loss, rel=1e-10)  # same value at θ0
        assert np.abs(grad - fixed_grad).max() > 1e-3  # the geometry items now pull
        assert_loss_gradient(problem, theta, grad, KEYS)
    finally:
        problem.geometry_model = None
