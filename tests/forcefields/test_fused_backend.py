"""The fusing jit backend on ReaxFF: the whole model (all terms, charges, forces, virial and
gradients with respect to the parameters) equal to the interpreter's to 1e-12 relative, for a
periodic crystal (PETN) and a molecular system, both charge conventions. The interpreter is the
specification; the iterative (CG) charge solver is excluded: its tolerance, not the backend,
sets its last digits."""
import numpy as np
import pytest

import reaxgrad.core as rc
from reaxgrad.core.tree import tree_leaves

runtime_c = pytest.importorskip("reaxgrad.core.fusion.runtime_c")
pytestmark = pytest.mark.skipif(not runtime_c.available(), reason="no C compiler")


def _conforms(got, want, rtol=1e-12):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    if want.size == 0:
        return
    scale = np.max(np.abs(want))
    assert np.max(np.abs(got - want)) <= rtol * max(scale, 1e-300), (got, want)


def _petn(reps=1):
    import ase.io

    from reaxgrad.forcefields import lammps_oracle as lo

    atoms = ase.io.read(lo.bench_dir() / "data.reax", format="lammps-data",
                        atom_style="charge", Z_of_type={1: 6, 2: 1, 3: 8, 4: 7}, units="real")
    atoms.pbc = True
    return atoms.repeat((reps, reps, reps)), lo.potential_path("ffield.reax.budzien")


def _args(model, atoms):
    types = model.types_of(atoms.get_chemical_symbols())
    pbc = np.broadcast_to(np.asarray(atoms.pbc, dtype=bool), (3,))
    cell = atoms.cell.array if atoms.pbc.any() else np.zeros((3, 3))
    lists = model.lists(atoms.positions, cell, pbc, types)
    return (atoms.positions, cell, model.params, lists, np.float64(0.0), None, None,
            model.charge_method, model.convention, "direct")


@pytest.mark.parametrize("convention", ["lammps", "consistent"])
def test_petn_crystal_evaluation_equals_the_interpreter(lammps_oracle, convention):
    from reaxgrad.forcefields.reaxff import model as M

    atoms, ffield = _petn()
    model = M.ReaxFF(ffield, convention=convention, solver="direct")
    args = _args(model, atoms)
    want = rc.jit(M._evaluate, static_argnums=(7, 8, 9), backend="interpreter")(*args)
    fused = rc.jit(M._evaluate, static_argnums=(7, 8, 9), backend="fused")
    got = fused(*args)
    for g, w in zip(tree_leaves(got), tree_leaves(want)):
        _conforms(g, w)
    (entry,) = fused._cache.values()
    assert entry.run.plan.kernels  # it ran fused kernels


def test_parameter_gradients_equal_the_interpreter(lammps_oracle, cho_molecules):
    """What fitting differentiates: the energy with respect to the force-field parameters."""
    from reaxgrad.forcefields.reaxff import model as M

    model = M.ReaxFF(lammps_oracle.potential_path("ffield.reax.cho"), solver="direct")
    args = _args(model, cho_molecules)

    floats = {k: v for k, v in model.params.items() if np.asarray(v).dtype.kind == "f"}
    others = {k: v for k, v in model.params.items() if k not in floats}

    def energy(params, positions):
        energy, _terms, _q, _state, de_dpos, _ = M._evaluate(
            positions, args[1], {**others, **params}, *args[3:])
        return energy + 0.01 * rc.numpy.sum(de_dpos ** 2)  # an energy-and-forces loss

    grad = rc.value_and_grad(energy, argnums=(0, 1))
    want = rc.jit(grad, backend="interpreter")(floats, cho_molecules.positions)
    got = rc.jit(grad, backend="fused")(floats, cho_molecules.positions)
    for g, w in zip(tree_leaves(got), tree_leaves(want)):
        _conforms(g, w)


def test_molecules_of_different_sizes_share_one_compiled_source(tmp_path, monkeypatch):
    """Two small molecules (9 and 10 atoms, different list capacities): one C source, compiled
    once (the second evaluation loads the first's library), both equal to the interpreter."""
    from ase.build import molecule

    from reaxgrad.core.executors.fused import Plan
    from reaxgrad.forcefields import lammps_oracle as lo
    from reaxgrad.forcefields.reaxff import model as M

    monkeypatch.setenv("REAXGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(runtime_c, "_loaded", {})
    model = M.ReaxFF(str(lo.bench_dir() / "ffield.reax"), solver="direct")
    sources = set()
    for name in ("CH3CH2OH", "C4H4NH"):
        atoms = molecule(name)
        atoms.center(vacuum=5.0)
        args = _args(model, atoms)
        interp = rc.jit(M._evaluate, static_argnums=(7, 8, 9), backend="interpreter")
        sources.add(Plan(interp.lower(*args)).source)
        want = interp(*args)
        got = rc.jit(M._evaluate, static_argnums=(7, 8, 9), backend="fused")(*args)
        for g, w in zip(tree_leaves(got), tree_leaves(want)):
            _conforms(g, w)
    assert len(sources) == 1
    assert len(list(tmp_path.glob("*.so"))) == 1
