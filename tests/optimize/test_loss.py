"""The loss and its gradient with respect to the fitted parameters: every item type against
central finite differences (charges and forces through the charge solve included), and the
predictions against direct evaluations."""
import numpy as np
import pytest
from fit_helpers import assert_loss_gradient

from reaxgrad.datasets.trainset import TrainItem
from reaxgrad.forcefields.ffield import read_ffield
from reaxgrad.forcefields.params_file import ParamLine
from reaxgrad.optimize.data import structures_from_atoms
from reaxgrad.optimize.items import CATEGORIES_ALL
from reaxgrad.optimize.parameters import ParameterMap
from reaxgrad.optimize.problem import FitProblem

# (section, entry, number): C r_s, O chi, O eta, H gamma, a C-H bond De_s and p_be1, a general
# parameter (valency-angle), an angle and a torsion parameter, an H-bond r0
KEYS = [(2, 1, 1), (2, 3, 14), (2, 3, 15), (2, 2, 6), (3, 2, 1), (3, 2, 4), (1, 16, 1),
        (5, 3, 2), (6, 3, 2), (7, 1, 1)]


def _items(structures):
    names = [s.name for s in structures]
    it = []
    add = lambda *a, **k: it.append(TrainItem(*a, **k, line=len(it) + 1))  # noqa: E731
    add("ENERGY", 1.5, (-3.0,), (names[2], names[0], names[1]), (1.0, -0.5, -0.5))
    add("ENERGY", 2.0, (12.0,), (names[5], names[2]), (1.0, -1.0))
    add("ENERGY", 0.5, (-300.0,), (names[7],), (1.0 / 2,))
    add("CHARGE", 0.05, (-0.4,), (names[0],), atoms=(0,))
    add("CHARGE", 0.1, (-0.9,), (names[6],), atoms=(0,))
    add("CHARGE", 0.1, (0.3,), (names[7],), atoms=(1,))
    add("FORCE", 2.0, (1.0, -2.0, 0.5), (names[5],), atoms=(1,))
    add("FORCE", 1.0, (0.0, 0.0, 0.0), (names[7],), atoms=(3,))
    add("HEATFO", 3.0, (-50.0,), (names[3],))
    add("RMSG", 2.0, (1.0,), (names[4],))
    add("DISTANCE", 0.05, (1.0,), (names[0],), atoms=(0, 1))
    add("ANGLE", 2.0, (100.0,), (names[2],), atoms=(1, 0, 2))
    add("TORSION", 5.0, (60.0,), (names[3],), atoms=(2, 0, 1, 5))
    add("CELL", 0.1, (4.5,), (names[7],), cell_parameter="b")
    return it


@pytest.fixture(scope="module")
def problems(cho_ffield, small_structures):
    """{convention: FitProblem} on the same structures, items and parameters."""
    ff = read_ffield(cho_ffield)
    structures = structures_from_atoms(small_structures, ff)
    pmap = ParameterMap(ff, [ParamLine(*k, 0.001, -1e6, 1e6) for k in KEYS])
    return {c: FitProblem(pmap, structures, {"train": _items(structures)},
                          scored=CATEGORIES_ALL, convention=c)
            for c in ("jaxreaxff", "lammps")}


@pytest.fixture(scope="module")
def problem(problems):
    return problems["jaxreaxff"]


@pytest.mark.parametrize("convention", ["jaxreaxff", "lammps"])
def test_loss_gradient_matches_finite_differences(problems, convention):
    problem = problems[convention]
    theta = problem.pmap.initial.copy()
    loss, grad = problem.loss_and_grad(theta)
    assert np.isfinite(loss) and loss > 0
    assert_loss_gradient(problem, theta, grad, KEYS)
    assert np.count_nonzero(grad) >= len(theta) - 1  # every family of parameters matters
    assert problem.compile_counts()["loss_and_grad"] == 1


def test_every_category_is_predicted_and_scored(problem):
    ev = problem.evaluate(problem.pmap.initial)["train"]
    assert set(ev.categories) == set(CATEGORIES_ALL)
    # each category's contribution equals the loss of its items recomputed by hand
    cell = problem.tables["train"]["CELL"]
    b = float(np.linalg.norm(problem.structures[7].cell[1]))
    assert ev.predictions["CELL"][0] == pytest.approx(b)
    assert ev.categories["CELL"] == pytest.approx(((4.5 - b) / 0.1) ** 2)
    d = np.linalg.norm(problem.structures[0].positions[0] - problem.structures[0].positions[1])
    assert ev.predictions["DISTANCE"][0] == pytest.approx(d)
    total = sum(ev.categories.values())
    assert ev.loss == pytest.approx(total)
    loss, _ = problem.loss_and_grad(problem.pmap.initial)
    assert loss == pytest.approx(ev.loss, rel=1e-12)
    assert cell.items[0].cell_parameter == "b"


def test_loss_hessian_matches_finite_differences_of_the_gradient(problem):
    from reaxgrad.optimize.sensitivity import loss_hessian, sensitivity_report

    theta = problem.pmap.initial.copy()
    hessian = loss_hessian(problem, theta, chunk=4)
    for k in (0, 2, 4, 6):
        h = 1e-6 * max(1.0, abs(theta[k]))
        up, down = theta.copy(), theta.copy()
        up[k] += h
        down[k] -= h
        fd = (problem.loss_and_grad(up)[1] - problem.loss_and_grad(down)[1]) / (2 * h)
        np.testing.assert_allclose(hessian[k], fd, rtol=1e-4, atol=1e-4 * np.abs(fd).max())
    report = sensitivity_report(problem, theta)
    values = np.array(report["eigenvalues"])
    assert values[0] >= values[-1] and len(values) == len(theta)
    assert len(report["parameters"]) == len(theta)
