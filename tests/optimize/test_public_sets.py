"""Every item of the three public JAX-ReaxFF training sets (and the disulfide validation set)
evaluates to a finite prediction, and the scores equal JAX-ReaxFF's own reports at the input
geometries (its loss printed in the report name: disulfide 12232.39 with ffield_lit and 5639.46
with ffield_best, silica 37270.18 / 12538.02; run with JAX-ReaxFF 0.2 + jax 0.4.30 here)."""
import warnings

import numpy as np
import pytest

from reaxgrad.forcefields.ffield import read_ffield
from reaxgrad.optimize.data import load_problem_inputs
from reaxgrad.optimize.parameters import ParameterMap
from reaxgrad.optimize.problem import FitProblem

JAXREAXFF_LOSS = {("disulfide", "ffield_lit"): 12232.39, ("disulfide", "ffield_best"): 5639.46,
                  ("silica", "ffield_lit"): 37270.18, ("silica", "ffield_best"): 12538.02}


def _problem(folder, ffield, valid=False):
    ff = read_ffield(folder / ffield)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # public files: reversed bounds, missing structures
        pmap = ParameterMap(ff, str(folder / "params"))
        extra = (folder / "valSet" / "trainset.in", folder / "valSet" / "geo") if valid else ()
        structures, sets = load_problem_inputs(ff, folder / "geo", folder / "trainset.in",
                                               *extra, strict=False)
    return FitProblem(pmap, structures, sets)


@pytest.mark.parametrize("name, ffield", sorted(JAXREAXFF_LOSS))
def test_scores_equal_jaxreaxff_reports(shared_data, name, ffield):
    problem = _problem(shared_data / name, ffield)
    ev = problem.evaluate(problem.pmap.initial)["train"]
    for cat, pred in ev.predictions.items():
        assert np.all(np.isfinite(pred)), cat
    # JAX-ReaxFF's reports print two decimals (every row equal)
    assert ev.loss == pytest.approx(JAXREAXFF_LOSS[(name, ffield)], abs=0.05)


def test_cobalt_and_the_disulfide_validation_set_evaluate(shared_data):
    for name, valid in (("cobalt", False), ("disulfide", True)):
        problem = _problem(shared_data / name, "ffield_lit", valid=valid)
        evaluations = problem.evaluate(problem.pmap.initial)
        assert set(evaluations) == ({"train", "valid"} if valid else {"train"})
        if valid:  # JAX-ReaxFF's valid_report for ffield_lit: 11359.78 (all 970 rows equal)
            assert evaluations["valid"].loss == pytest.approx(11359.78, abs=0.05)
        else:  # its cobalt report: 1443.93
            assert evaluations["train"].loss == pytest.approx(1443.93, abs=0.05)
        for ev in evaluations.values():
            n = sum(len(t.items) for t in problem.tables["train"].values())
            assert n > 100
            for cat, pred in ev.predictions.items():
                assert np.all(np.isfinite(pred)), (name, cat)
            assert np.isfinite(ev.loss) and ev.loss > 0
