"""ReaxFF parameter tables indexed by atom type, filled exactly as LAMMPS fills them.

``to_params(ff)`` turns the records of a :class:`~reaxgrad.forcefields.ffield.ForceField` into a
flat ``dict[str, numpy.ndarray]`` (float64 unless noted; ``n`` = number of atom types):

* ``gp`` (n_global,): the general parameters, in file order.
* per atom type (n,): the LAMMPS ``sbp`` fields ``r_s valency mass r_vdw epsilon gamma r_pi
  valency_e alpha gamma_w valency_boc p_ovun5 chi eta r_pi_pi p_lp2 b_o_131 b_o_132 b_o_133
  bcut_acks2 p_ovun2 p_val3 valency_val p_val5 rcore2 ecore2 acore2 lgcij lgre`` with LAMMPS's
  conventions: ``eta`` is twice the file value, ``valency_val`` is replaced by ``valency_boc``
  for types lighter than 21 amu, ``lgcij``/``lgre`` are 0 without lg; ``p_hbond`` (int64) is the
  truncated hydrogen-bond flag; ``nlp_opt = (valency_e - valency) / 2`` is derived.
* bond section (n, n), symmetric, 0 where no entry: ``De_s De_p De_pp p_be1 p_bo5 v13cor p_bo6
  p_ovun1 p_be2 p_bo3 p_bo4 p_bo1 p_bo2 ovc``; ``bond_mask`` (bool) marks explicit entries
  (LAMMPS does not use it: a pair without entry simply has zero parameters).
* off-diagonal section (n, n), symmetric, file values: ``off_D off_r_vdw off_alpha off_r_s
  off_r_p off_r_pp off_lgcij`` with bool ``<name>_mask`` where LAMMPS applies them (value > 0;
  ``off_lgcij`` >= 0 and only with lg).  The last applicable entry wins.
* mixed pair tables (n, n) = LAMMPS ``tbp`` after mixing and off-diagonal overrides (derived):
  ``pair_r_s pair_r_p pair_r_pp pair_p_boc3 pair_p_boc4 pair_p_boc5 pair_D pair_alpha
  pair_r_vdw pair_gamma_w pair_gamma pair_rcore pair_ecore pair_acore pair_lgcij pair_lgre``.
* angles (n, n, n, S), symmetric in i <-> k, indexed [i, j(centre), k, slot]: ``theta_00 p_val1
  p_val2 p_coa1 p_val7 p_pen1 p_val4`` and ``angle_mask`` (slot filled and |p_val1| > 0.001,
  the test LAMMPS applies).  LAMMPS keeps every entry given for a triple and sums their
  energies; S is the largest number of entries for one triple (1 when there are no repeats).
* torsions (n, n, n, n): ``V1 V2 V3 p_tor1 p_cot1`` and ``torsion_mask``; ``0-j-k-0`` wildcards
  fill every (i, j, k, l) and (l, k, j, i) not set by a specific entry, whatever the order.
* hydrogen bonds (n, n, n) indexed [X, H, Z] as written: ``r0_hb p_hb1 p_hb2 p_hb3`` (``r0_hb``
  = -1 where no entry) and ``hbond_mask`` (r0_hb > 0, as LAMMPS tests).
* ``vdw_type`` (0-d int): 1 shielding, 2 inner wall, 3 both (from the first atom type, as LAMMPS).

``derive(params, xp)`` recomputes the derived entries (``nlp_opt`` and ``pair_*``) from the
others with any numpy-like module, so a fit can move atom parameters and off-diagonal values and
see the mixed tables follow.
"""

from __future__ import annotations

import warnings

import numpy as np

from .ffield import FFieldError, ForceField

# (table name, value index within the record); value index k is params-file parameter k + 1.
ATOM_FIELDS = (
    ("r_s", 0), ("valency", 1), ("mass", 2), ("r_vdw", 3), ("epsilon", 4), ("gamma", 5),
    ("r_pi", 6), ("valency_e", 7), ("alpha", 8), ("gamma_w", 9), ("valency_boc", 10),
    ("p_ovun5", 11), ("chi", 13), ("eta", 14), ("p_hbond", 15), ("r_pi_pi", 16), ("p_lp2", 17),
    ("b_o_131", 19), ("b_o_132", 20), ("b_o_133", 21), ("bcut_acks2", 22), ("p_ovun2", 24),
    ("p_val3", 25), ("valency_val", 27), ("p_val5", 28), ("rcore2", 29), ("ecore2", 30),
    ("acore2", 31), ("lgcij", 32), ("lgre", 33),
)  # fmt: skip
ATOM_SCALE = {"eta": 2.0}  # table value = scale * file value
BOND_FIELDS = (
    ("De_s", 0), ("De_p", 1), ("De_pp", 2), ("p_be1", 3), ("p_bo5", 4), ("v13cor", 5),
    ("p_bo6", 6), ("p_ovun1", 7), ("p_be2", 8), ("p_bo3", 9), ("p_bo4", 10), ("p_bo1", 12),
    ("p_bo2", 13), ("ovc", 14),
)  # fmt: skip
OFFDIAGONAL_FIELDS = (
    ("off_D", 0), ("off_r_vdw", 1), ("off_alpha", 2), ("off_r_s", 3), ("off_r_p", 4),
    ("off_r_pp", 5), ("off_lgcij", 6),
)  # fmt: skip
ANGLE_FIELDS = (
    ("theta_00", 0), ("p_val1", 1), ("p_val2", 2), ("p_coa1", 3), ("p_val7", 4), ("p_pen1", 5),
    ("p_val4", 6),
)  # fmt: skip
TORSION_FIELDS = (("V1", 0), ("V2", 1), ("V3", 2), ("p_tor1", 3), ("p_cot1", 4))
HBOND_FIELDS = (("r0_hb", 0), ("p_hb1", 1), ("p_hb2", 2), ("p_hb3", 3))

SECTION_FIELDS = {
    "atoms": ATOM_FIELDS,
    "bonds": BOND_FIELDS,
    "offdiagonal": OFFDIAGONAL_FIELDS,
    "angles": ANGLE_FIELDS,
    "torsions": TORSION_FIELDS,
    "hbonds": HBOND_FIELDS,
}
DERIVED_KEYS = (
    "nlp_opt", "pair_r_s", "pair_r_p", "pair_r_pp", "pair_p_boc3", "pair_p_boc4", "pair_p_boc5",
    "pair_D", "pair_alpha", "pair_r_vdw", "pair_gamma_w", "pair_gamma", "pair_rcore",
    "pair_ecore", "pair_acore", "pair_lgcij", "pair_lgre",
)  # fmt: skip
LIGHT_ATOM_MASS = 21.0  # LAMMPS sets valency_val = valency_boc below this mass
ANGLE_P_VAL1_MIN = 0.001  # LAMMPS skips angle entries with |p_val1| <= this


def to_params(ff: ForceField) -> dict[str, np.ndarray]:
    """The parameter tables of ``ff`` (keys and shapes in the module docstring)."""
    return build_tables(ff)[0]


def build_tables(ff: ForceField) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(params, owners)``.  ``owners[family]`` holds, for every table entry, the index of the
    record that set it (-1: none); families are ``bonds``, ``angles``, ``torsions``, ``hbonds``
    and each ``off_*`` name.  The params-file mapping is read off these."""
    n = ff.n_types
    p: dict[str, np.ndarray] = {"gp": np.array([r.value(0) for r in ff.general], dtype=np.float64)}
    owners: dict[str, np.ndarray] = {}
    _atom_tables(ff, p)
    _bond_tables(ff, n, p, owners)
    _offdiagonal_tables(ff, n, p, owners)
    _angle_tables(ff, n, p, owners)
    _torsion_tables(ff, n, p, owners)
    _hbond_tables(ff, n, p, owners)
    p["vdw_type"] = np.array(_vdw_type(ff, p), dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p.update(derive(p))
    return p, owners


def derive(p: dict, xp=np) -> dict:
    """The derived tables (``nlp_opt`` and the mixed ``pair_*``) from the independent ones.

    Uses only arithmetic, ``xp.sqrt`` and ``xp.where``, so any numpy-like module works.
    Mixing rules: arithmetic mean for the bond radii, geometric mean otherwise, ``r_vdw`` doubled,
    ``gamma`` as (gamma_i gamma_j)^-1.5, ``lgre`` times 2 gp[35]; then off-diagonal overrides.
    """

    def outer(name):
        a = p[name]
        return a[:, None] * a[None, :]

    def mean(name):
        a = p[name]
        return 0.5 * (a[:, None] + a[None, :])

    def geometric(name):
        return xp.sqrt(outer(name))

    def override(name, mixed):
        return xp.where(p[name + "_mask"], p[name], mixed)

    gp = p["gp"]
    gp35 = gp[35] if gp.shape[0] > 35 else 0.0
    return {
        "nlp_opt": 0.5 * (p["valency_e"] - p["valency"]),
        "pair_r_s": override("off_r_s", mean("r_s")),
        "pair_r_p": override("off_r_p", mean("r_pi")),
        "pair_r_pp": override("off_r_pp", mean("r_pi_pi")),
        "pair_p_boc3": geometric("b_o_132"),
        "pair_p_boc4": geometric("b_o_131"),
        "pair_p_boc5": geometric("b_o_133"),
        "pair_D": override("off_D", geometric("epsilon")),
        "pair_alpha": override("off_alpha", geometric("alpha")),
        "pair_r_vdw": xp.where(p["off_r_vdw_mask"], 2 * p["off_r_vdw"], 2.0 * geometric("r_vdw")),
        "pair_gamma_w": geometric("gamma_w"),
        "pair_gamma": outer("gamma") ** -1.5,
        "pair_rcore": geometric("rcore2"),
        "pair_ecore": geometric("ecore2"),
        "pair_acore": geometric("acore2"),
        "pair_lgcij": override("off_lgcij", geometric("lgcij")),
        "pair_lgre": (2.0 * gp35) * geometric("lgre"),
    }


def _atom_tables(ff: ForceField, p: dict) -> None:
    values = np.array([[r.value(k) for k in range(34)] for r in ff.atoms], dtype=np.float64)
    values = values.reshape(len(ff.atoms), 34)
    if not ff.lg:
        values[:, 32:] = 0.0
    for name, k in ATOM_FIELDS:
        p[name] = ATOM_SCALE.get(name, 1.0) * values[:, k]
    p["p_hbond"] = np.trunc(p["p_hbond"]).astype(np.int64)
    light = p["mass"] < LIGHT_ATOM_MASS
    p["valency_val"] = np.where(light, p["valency_boc"], p["valency_val"])


def _in_range(types, n: int) -> bool:
    return all(t - 1 < n for t in types)  # LAMMPS silently skips entries for unknown types


def _bond_tables(ff: ForceField, n: int, p: dict, owners: dict) -> None:
    tables = {name: np.zeros((n, n)) for name, _ in BOND_FIELDS}
    owner = np.full((n, n), -1)
    for e, rec in enumerate(ff.bonds):
        if not _in_range(rec.types, n):
            continue
        j, k = (t - 1 for t in rec.types)
        for name, idx in BOND_FIELDS:
            tables[name][j, k] = tables[name][k, j] = rec.value(idx)
        owner[j, k] = owner[k, j] = e
    p.update(tables)
    p["bond_mask"] = owner >= 0
    owners["bonds"] = owner


def _offdiagonal_tables(ff: ForceField, n: int, p: dict, owners: dict) -> None:
    for name, idx in OFFDIAGONAL_FIELDS:
        table, owner = np.zeros((n, n)), np.full((n, n), -1)
        is_lg = name == "off_lgcij"
        for e, rec in enumerate(ff.offdiagonal):
            if not _in_range(rec.types, n) or (is_lg and not ff.lg):
                continue
            j, k = (t - 1 for t in rec.types)
            v = rec.value(idx)
            if v >= 0.0 if is_lg else v > 0.0:
                table[j, k] = table[k, j] = v
                owner[j, k] = owner[k, j] = e
        p[name], p[name + "_mask"], owners[name] = table, owner >= 0, owner


def _angle_tables(ff: ForceField, n: int, p: dict, owners: dict) -> None:
    slots: dict[tuple[int, int, int], list[int]] = {}
    for e, rec in enumerate(ff.angles):
        if not _in_range(rec.types, n):
            continue
        i, j, k = (t - 1 for t in rec.types)
        slots.setdefault((i, j, k), []).append(e)
        if k != i:
            slots.setdefault((k, j, i), []).append(e)
    depth = max([len(v) for v in slots.values()] + [1])
    tables = {name: np.zeros((n, n, n, depth)) for name, _ in ANGLE_FIELDS}
    owner = np.full((n, n, n, depth), -1)
    for (i, j, k), entries in slots.items():
        for s, e in enumerate(entries):
            for name, idx in ANGLE_FIELDS:
                tables[name][i, j, k, s] = ff.angles[e].value(idx)
            owner[i, j, k, s] = e
    p.update(tables)
    p["angle_mask"] = (owner >= 0) & (np.abs(tables["p_val1"]) > ANGLE_P_VAL1_MIN)
    owners["angles"] = owner


def _torsion_tables(ff: ForceField, n: int, p: dict, owners: dict) -> None:
    tables = {name: np.zeros((n, n, n, n)) for name, _ in TORSION_FIELDS}
    owner = np.full((n, n, n, n), -1)
    specific = np.zeros((n, n, n, n), dtype=bool)
    for e, rec in enumerate(ff.torsions):
        i, j, k, l = (t - 1 for t in rec.types)
        if i >= 0 and l >= 0:
            if not _in_range(rec.types, n):
                continue
            for name, idx in TORSION_FIELDS:
                tables[name][i, j, k, l] = tables[name][l, k, j, i] = rec.value(idx)
            owner[i, j, k, l] = owner[l, k, j, i] = e
            specific[i, j, k, l] = specific[l, k, j, i] = True
        elif j < n and k < n:
            for a, b in ((j, k), (k, j)):
                free = ~specific[:, a, b, :]
                for name, idx in TORSION_FIELDS:
                    tables[name][:, a, b, :][free] = rec.value(idx)
                owner[:, a, b, :][free] = e
    p.update(tables)
    p["torsion_mask"] = owner >= 0
    owners["torsions"] = owner


def _hbond_tables(ff: ForceField, n: int, p: dict, owners: dict) -> None:
    tables = {name: np.zeros((n, n, n)) for name, _ in HBOND_FIELDS}
    tables["r0_hb"][...] = -1.0
    owner = np.full((n, n, n), -1)
    for e, rec in enumerate(ff.hbonds):
        if not _in_range(rec.types, n):
            continue
        i, j, k = (t - 1 for t in rec.types)
        for name, idx in HBOND_FIELDS:
            tables[name][i, j, k] = rec.value(idx)
        owner[i, j, k] = e
    p.update(tables)
    p["hbond_mask"] = tables["r0_hb"] > 0.0
    owners["hbonds"] = owner


def _vdw_type(ff: ForceField, p: dict) -> int:
    """LAMMPS's van der Waals flavour: the first atom type decides, later disagreements warn."""
    vdw_type = 0
    for i, rec in enumerate(ff.atoms):
        inner_wall = p["rcore2"][i] > 0.01 and p["acore2"][i] > 0.01
        shielding = p["gamma_w"][i] > 0.5
        if not inner_wall and not shielding:
            raise FFieldError(
                ff.path, rec.lineno,
                f"atom {rec.symbol!r} sets neither van der Waals shielding (gamma_w > 0.5) nor an "
                "inner wall (rcore2 and acore2 > 0.01); LAMMPS rejects this force field",
            )  # fmt: skip
        kind = 3 if inner_wall and shielding else 2 if inner_wall else 1
        if vdw_type == 0:
            vdw_type = kind
        elif kind != vdw_type:
            warnings.warn(
                f"{ff.path}: van der Waals settings of atom {rec.symbol!r} differ from earlier "
                f"atom types; keeping type {vdw_type} as LAMMPS does",
                stacklevel=3,
            )
    return vdw_type
