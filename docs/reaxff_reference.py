"""Executable form of docs/reaxff_equations.md: a slow, loop-based ReaxFF reference.

Plain Python over explicit periodic image lists, written from the specification only. It
reproduces LAMMPS `pair_style reaxff` (22 Jul 2025), term by term, to about 1e-13 relative
on the structures listed in section 25 of the specification. It is meant for small test
systems (tens of atoms) and for debugging one term at a time, not for production. Section
numbers in the comments refer to docs/reaxff_equations.md.

    ff = parse_ffield("ffield.reax.cho")
    q = qeq_charges(ff, positions, cell, pbc, types)          # types: indices into ff["atoms"]
    terms = energy_terms(ff, positions, cell, pbc, types, q)  # dict eb, ea, ..., eqeq (kcal/mol)
"""

import itertools
import math

import numpy as np

C_ELE = 332.06371
K_POL = 23.02
K_QEQ = 14.4
PI_R = 3.14159265
TERM_NAMES = ("eb", "ea", "elp", "emol", "ev", "epen", "ecoa", "ehb", "et", "eco", "ew", "ep",
              "efi", "eqeq")

_BOND_KEYS = ("De_s", "De_p", "De_pp", "p_be1", "p_bo5", "v13cor", "p_bo6", "p_ovun1", "p_be2",
              "p_bo3", "p_bo4", "p_bo1", "p_bo2", "ovc")


def _exp(x):
    """exp with IEEE overflow to inf, as in C."""
    with np.errstate(over="ignore"):
        return float(np.exp(x))


def _read_lines(path):
    lines = open(path).read().splitlines()
    state = {"pos": 1}  # line 1 is the header

    def next_tokens():
        toks = lines[state["pos"]].split()
        state["pos"] += 1
        return toks

    def skip(k):
        state["pos"] += k

    return next_tokens, skip


def _parse_atoms(next_tokens, ntypes, lgflag):
    atoms, vdw_type = [], 0
    for _ in range(ntypes):
        t1 = next_tokens()
        a = {"name": t1[0].upper()[:3]}
        (a["r_s"], a["val"], a["mass"], a["r_vdw"], a["eps"], a["gamma"], a["r_pi"],
         a["val_e"]) = map(float, t1[1:9])
        a["nlp_opt"] = 0.5 * (a["val_e"] - a["val"])
        t2 = list(map(float, next_tokens()))
        a["alpha"], a["gamma_w"], a["val_angle"], a["p_ovun5"] = t2[0:4]
        a["chi"], a["eta_lmp"], a["p_hbond"] = t2[5], 2.0 * t2[6], int(t2[7])
        t3 = list(map(float, next_tokens()))
        a["r_pp"], a["p_lp2"] = t3[0:2]
        a["p_boc4"], a["p_boc3"], a["p_boc5"], a["bcut_acks2"] = t3[3:7]
        t4 = list(map(float, next_tokens()))
        a["p_ovun2"], a["p_val3"] = t4[0:2]
        a["val_boc"], a["p_val5"], a["rcore2"], a["ecore2"], a["acore2"] = t4[3:8]
        a["lgcij"], a["lgre"] = (list(map(float, next_tokens()))[0:2] if lgflag else (0.0, 0.0))
        # section 1.10: global vdW mode from the first element
        if a["rcore2"] > 0.01 and a["acore2"] > 0.01:
            mode = 3 if a["gamma_w"] > 0.5 else 2
        elif a["gamma_w"] > 0.5:
            mode = 1
        else:
            raise ValueError(f"no shielding or inner wall for element {a['name']}")
        vdw_type = vdw_type or mode
        atoms.append(a)
    for a in atoms:  # section 1.3
        if a["mass"] < 21 and a["val_boc"] != a["val_angle"]:
            a["val_boc"] = a["val_angle"]
    return atoms, vdw_type


def _combine(atoms, gp):
    """Section 1.4 combination rules; bond-block values start at zero."""
    nt = len(atoms)
    tb = [[dict.fromkeys(_BOND_KEYS, 0.0) for _ in range(nt)] for _ in range(nt)]
    for i, j in itertools.product(range(nt), repeat=2):
        ai, aj = atoms[i], atoms[j]
        tb[i][j].update(
            r_s=0.5 * (ai["r_s"] + aj["r_s"]), r_p=0.5 * (ai["r_pi"] + aj["r_pi"]),
            r_pp=0.5 * (ai["r_pp"] + aj["r_pp"]),
            p_boc3=math.sqrt(ai["p_boc3"] * aj["p_boc3"]),
            p_boc4=math.sqrt(ai["p_boc4"] * aj["p_boc4"]),
            p_boc5=math.sqrt(ai["p_boc5"] * aj["p_boc5"]),
            D=math.sqrt(ai["eps"] * aj["eps"]), alpha=math.sqrt(ai["alpha"] * aj["alpha"]),
            r_vdw=2.0 * math.sqrt(ai["r_vdw"] * aj["r_vdw"]),
            gamma_w=math.sqrt(ai["gamma_w"] * aj["gamma_w"]),
            shield=(ai["gamma"] * aj["gamma"]) ** -1.5,
            rcore=math.sqrt(ai["rcore2"] * aj["rcore2"]),
            ecore=math.sqrt(ai["ecore2"] * aj["ecore2"]),
            acore=math.sqrt(ai["acore2"] * aj["acore2"]),
            lgcij=math.sqrt(ai["lgcij"] * aj["lgcij"]),
            lgre=2.0 * gp[35] * math.sqrt(ai["lgre"] * aj["lgre"]),
        )
    return tb


def parse_ffield(path, lgflag=False):
    """Read an ffield file with LAMMPS' rules (section 1)."""
    next_tokens, skip = _read_lines(path)
    n_gp = int(next_tokens()[0])
    gp = [float(next_tokens()[0]) for _ in range(n_gp)]
    nt = int(next_tokens()[0])
    skip(3)
    atoms, vdw_type = _parse_atoms(next_tokens, nt, lgflag)
    tb = _combine(atoms, gp)
    n_bonds = int(next_tokens()[0])
    skip(1)
    for _ in range(n_bonds):  # section 1.5
        t1, t2 = next_tokens(), list(map(float, next_tokens()))
        i, j = int(t1[0]) - 1, int(t1[1]) - 1
        v = list(map(float, t1[2:10]))
        if i < nt and j < nt:
            vals = dict(zip(_BOND_KEYS[:8], v))
            vals.update(p_be2=t2[0], p_bo3=t2[1], p_bo4=t2[2], p_bo1=t2[4], p_bo2=t2[5],
                        ovc=t2[6] if len(t2) > 6 else 0.0)
            tb[i][j].update(vals)
            tb[j][i].update(vals)
    for _ in range(int(next_tokens()[0])):  # section 1.6
        t = next_tokens()
        i, j = int(t[0]) - 1, int(t[1]) - 1
        v = list(map(float, t[2:]))
        if i < nt and j < nt:
            for key, col, scale in (("D", 0, 1), ("r_vdw", 1, 2), ("alpha", 2, 1),
                                    ("r_s", 3, 1), ("r_p", 4, 1), ("r_pp", 5, 1)):
                if v[col] > 0.0:
                    tb[i][j][key] = tb[j][i][key] = scale * v[col]
            if lgflag and v[6] >= 0.0:
                tb[i][j]["lgcij"] = tb[j][i]["lgcij"] = v[6]
    thb, thb_cnt = {}, {}
    for _ in range(int(next_tokens()[0])):  # section 1.7
        t = next_tokens()
        i, j, k = (int(x) - 1 for x in t[:3])
        v = list(map(float, t[3:10]))
        if max(i, j, k) < nt:
            prm = dict(zip(("theta_00", "p_val1", "p_val2", "p_coa1", "p_val7", "p_pen1",
                            "p_val4"), v))
            cnt = thb_cnt.get((i, j, k), 0)
            for key in ((i, j, k), (k, j, i)):
                thb_cnt[key] = thb_cnt.get(key, 0) + 1
                thb.setdefault(key, [None] * 5)[cnt] = prm
    thb = {key: [p for p in lst[:thb_cnt[key]] if p is not None] for key, lst in thb.items()}
    fbp, explicit = {}, set()
    for _ in range(int(next_tokens()[0])):  # section 1.8
        t = next_tokens()
        i, j, k, m = (int(x) - 1 for x in t[:4])
        prm = dict(zip(("V1", "V2", "V3", "p_tor1", "p_cot1"), map(float, t[4:9])))
        if i >= 0 and m >= 0:
            if max(i, j, k, m) < nt:
                for key in ((i, j, k, m), (m, k, j, i)):
                    explicit.add(key)
                    fbp[key] = prm
        elif j < nt and k < nt:
            for p, o in itertools.product(range(nt), repeat=2):
                for key in ((p, j, k, o), (o, k, j, p)):
                    if key not in explicit:
                        fbp[key] = prm
    hbp = {}
    for _ in range(int(next_tokens()[0])):  # section 1.9
        t = next_tokens()
        i, j, k = (int(x) - 1 for x in t[:3])
        if max(i, j, k) < nt:
            hbp[(i, j, k)] = dict(zip(("r0_hb", "p_hb1", "p_hb2", "p_hb3"),
                                      map(float, t[3:7])))
    return dict(gp=gp, atoms=atoms, tb=tb, thb=thb, fbp=fbp, hbp=hbp, vdw_type=vdw_type,
                lgflag=lgflag)


def taper_coeffs(swa, swb):
    """Section 14: Tap0..Tap7."""
    d7 = (swb - swa) ** 7
    a2, a3, b2, b3 = swa**2, swa**3, swb**2, swb**3
    return [
        (-35.0 * a3 * b2 * b2 + 21.0 * a2 * b3 * b2 - 7.0 * swa * b3 * b3 + b3 * b3 * swb) / d7,
        140.0 * a3 * b3 / d7,
        -210.0 * (a3 * b2 + a2 * b3) / d7,
        140.0 * (a3 * swb + 3.0 * a2 * b2 + swa * b3) / d7,
        -35.0 * (a3 + 9.0 * a2 * swb + 9.0 * swa * b2 + b3) / d7,
        84.0 * (a2 + 3.0 * swa * swb + b2) / d7,
        -70.0 * (swa + swb) / d7,
        20.0 / d7,
    ]


def taper(coeffs, r):
    value = coeffs[7]
    for k in range(6, -1, -1):
        value = value * r + coeffs[k]
    return value


def image_pairs(pos, cell, pbc, cutoff):
    """Every (i, j, shift, d, r) with 0 < r <= cutoff, d = x_j + shift @ cell - x_i."""
    cell = np.asarray(cell, float)
    reps = []
    for a in range(3):
        if pbc[a]:
            normal = np.cross(cell[(a + 1) % 3], cell[(a + 2) % 3])
            spacing = abs(cell[a] @ normal) / np.linalg.norm(normal)
            reps.append(int(math.ceil(cutoff / spacing)) + 1)
        else:
            reps.append(0)
    out = []
    for shift in itertools.product(*(range(-r, r + 1) for r in reps)):
        offset = np.array(shift) @ cell
        for i, j in itertools.product(range(len(pos)), repeat=2):
            if i == j and not any(shift):
                continue
            d = pos[j] + offset - pos[i]
            r = math.sqrt(d @ d)
            if r <= cutoff:
                out.append((i, j, shift, d, r))
    return out


def _angle(u, v, ru, rv):
    return math.acos(min(1.0, max(-1.0, (u @ v) / (ru * rv))))


def _neg(shift):
    return tuple(-x for x in shift)


def _bond_orders(ff, pairs, types, n, bond_cut):
    """Section 4: bond list with corrected bond orders, and per-atom quantities."""
    gp, at, tb = ff["gp"], ff["atoms"], ff["tb"]
    c_bo = 0.01 * gp[29]
    bonds = {i: [] for i in range(n)}
    for i, j, shift, d, r in pairs:
        if r > bond_cut:
            continue
        ai, aj, p = at[types[i]], at[types[j]], tb[types[i]][types[j]]
        sig = ((1 + c_bo) * _exp(p["p_bo1"] * (r / p["r_s"]) ** p["p_bo2"])
               if ai["r_s"] > 0 and aj["r_s"] > 0 else 0.0)
        pi = (_exp(p["p_bo3"] * (r / p["r_p"]) ** p["p_bo4"])
              if ai["r_pi"] > 0 and aj["r_pi"] > 0 else 0.0)
        pi2 = (_exp(p["p_bo5"] * (r / p["r_pp"]) ** p["p_bo6"])
               if ai["r_pp"] > 0 and aj["r_pp"] > 0 else 0.0)
        if sig + pi + pi2 >= c_bo:
            bonds[i].append(dict(j=j, shift=shift, d=d, r=r, bop=sig + pi + pi2 - c_bo,
                                 bop_s=sig - c_bo, bop_pi=pi, bop_pi2=pi2))
    s_prime = [sum(b["bop"] for b in bonds[i]) for i in range(n)]
    dp = [s_prime[i] - at[types[i]]["val"] for i in range(n)]
    dp_boc = [s_prime[i] - at[types[i]]["val_boc"] for i in range(n)]
    for i in range(n):
        for b in bonds[i]:
            j = b["j"]
            p = tb[types[i]][types[j]]
            if p["ovc"] < 0.001 and p["v13cor"] < 0.001:
                bo, bo_pi, bo_pi2, bo_s = b["bop"], b["bop_pi"], b["bop_pi2"], b["bop_s"]
            else:
                f1 = 1.0
                if p["ovc"] >= 0.001:
                    vi, vj = at[types[i]]["val"], at[types[j]]["val"]
                    f2 = _exp(-gp[0] * dp[i]) + _exp(-gp[0] * dp[j])
                    f3 = -1.0 / gp[1] * math.log(0.5 * (_exp(-gp[1] * dp[i])
                                                         + _exp(-gp[1] * dp[j])))
                    f1 = 0.5 * ((vi + f2) / (vi + f2 + f3) + (vj + f2) / (vj + f2 + f3))
                f4 = f5 = 1.0
                if p["v13cor"] >= 0.001:
                    x = p["p_boc4"] * b["bop"] ** 2
                    f4 = 1.0 / (1.0 + _exp(-(x - dp_boc[i]) * p["p_boc3"] + p["p_boc5"]))
                    f5 = 1.0 / (1.0 + _exp(-(x - dp_boc[j]) * p["p_boc3"] + p["p_boc5"]))
                bo = b["bop"] * f1 * f4 * f5
                bo_pi = b["bop_pi"] * f1 * f1 * f4 * f5
                bo_pi2 = b["bop_pi2"] * f1 * f1 * f4 * f5
                bo_s = bo - (bo_pi + bo_pi2)
            for key, val in (("bo", bo), ("bo_s", bo_s), ("bo_pi", bo_pi), ("bo_pi2", bo_pi2)):
                b[key] = val if val >= 1e-10 else 0.0
    atom = {"S": [sum(b["bo"] for b in bonds[i]) for i in range(n)]}
    for key, val in (("delta", "val"), ("delta_e", "val_e"), ("delta_ang", "val_angle"),
                     ("delta_boc", "val_boc")):
        atom[key] = [atom["S"][i] - at[types[i]][val] for i in range(n)]
    atom["v"], atom["nlp"], atom["dlp"], atom["dlp_temp"] = [], [], [], []
    for i in range(n):
        t = math.trunc(atom["delta_e"][i] / 2.0)
        v = atom["delta_e"][i] - 2.0 * t
        nlp = _exp(-gp[15] * (2.0 + v) ** 2) - t
        dlp = at[types[i]]["nlp_opt"] - nlp
        atom["v"].append(v)
        atom["nlp"].append(nlp)
        atom["dlp"].append(dlp)
        atom["dlp_temp"].append(0.0 if at[types[i]]["mass"] > 21.0 else dlp)
    return bonds, atom


def _bond_energy(ff, bonds, atom, types, e):
    """Section 5."""
    gp, at, tb = ff["gp"], ff["atoms"], ff["tb"]
    for i, blist in bonds.items():
        for b in blist:
            j = b["j"]
            if (i, b["shift"]) > (j, _neg(b["shift"])):
                continue  # each bond once
            p = tb[types[i]][types[j]]
            pw = 0.0 if b["bo_s"] == 0.0 else b["bo_s"] ** p["p_be2"]
            e["eb"] += (-p["De_s"] * b["bo_s"] * _exp(p["p_be1"] * (1.0 - pw))
                        - p["De_p"] * b["bo_pi"] - p["De_pp"] * b["bo_pi2"])
            mi, mj = at[types[i]]["mass"], at[types[j]]["mass"]
            c_o = ((abs(mi - 12.0) < 1e-4 and abs(mj - 15.999) < 1e-4)
                   or (abs(mj - 12.0) < 1e-4 and abs(mi - 15.999) < 1e-4))
            if b["bo"] >= 1.0 and (math.trunc(gp[37]) == 2 or c_o):
                bo, s = b["bo"], atom["S"]
                e["eb"] += (gp[10] * _exp(-gp[7] * (bo - 2.5) ** 2)
                            * (_exp(-gp[3] * (s[i] - bo)) + _exp(-gp[3] * (s[j] - bo)))
                            / (1.0 + 25.0 * _exp(gp[4] * (atom["delta"][i] + atom["delta"][j]))))


def _atom_energies(ff, bonds, atom, types, e, enobonds):
    """Sections 6 and 7."""
    gp, at, tb = ff["gp"], ff["atoms"], ff["tb"]
    delta, dlp, dlp_temp = atom["delta"], atom["dlp"], atom["dlp_temp"]
    for i, blist in bonds.items():
        a = at[types[i]]
        counted = bool(blist) or enobonds
        if counted:
            e["elp"] += a["p_lp2"] * dlp[i] / (1.0 + _exp(-75.0 * dlp[i]))
        if gp[5] > 0.001 and a["name"] == "C":
            for b in blist:
                if at[types[b["j"]]]["name"] == "C":
                    x = b["bo"] - delta[i] - 0.04 * delta[i] ** 4
                    if x > 3.0:
                        e["elp"] += gp[5] * (x - 3.0) ** 2
        lam = 0.0 if a["mass"] > 21.0 else 1.0
        s1 = sum(tb[types[i]][types[b["j"]]]["p_ovun1"] * tb[types[i]][types[b["j"]]]["De_s"]
                 * b["bo"] for b in blist)
        s2 = sum((delta[b["j"]] - lam * dlp_temp[b["j"]]) * (b["bo_pi"] + b["bo_pi2"])
                 for b in blist)
        dlc = delta[i] - lam * dlp_temp[i] / (1.0 + gp[32] * _exp(gp[31] * s2))
        e["ea"] += s1 * dlc / (dlc + a["val"] + 1e-8) / (1.0 + _exp(a["p_ovun2"] * dlc))
        if counted:
            e["ea"] += (-a["p_ovun5"] * (1.0 - _exp(gp[6] * dlc))
                        / (1.0 + _exp(-a["p_ovun2"] * dlc)) / (1.0 + gp[8] * _exp(gp[9] * s2)))


def _sbo2(blist, atom, j, gp):
    sbop = sum(b["bo_pi"] + b["bo_pi2"] for b in blist)
    prod = 1.0
    for b in blist:
        prod *= _exp(-(b["bo"] ** 8))
    vlpadj = 0.0 if atom["v"][j] >= 0 else atom["nlp"][j]
    sbo = sbop + (1 - prod) * (-atom["delta_ang"][j] - gp[33] * vlpadj)
    if sbo <= 0:
        return 0.0
    if sbo <= 1:
        return sbo ** gp[16]
    if sbo < 2:
        return 2 - (2 - sbo) ** gp[16]
    return 2.0


def _angle_energies(ff, bonds, atom, types, e, thb_cut, thb_cutsq):
    """Sections 8, 9 and 10."""
    gp, at = ff["gp"], ff["atoms"]
    for j, blist in bonds.items():
        a = at[types[j]]
        sbo2 = _sbo2(blist, atom, j, gp)
        dang = atom["delta_ang"][j]
        e6 = _exp(gp[14] * dang)
        p3, p4 = _exp(-gp[20] * atom["delta"][j]), _exp(gp[21] * atom["delta"][j])
        f9 = (2 + p3) / (1 + p3 + p4)
        coa_j = 1.0 / (1 + _exp(gp[2] * atom["delta_boc"][j]))
        for bij, bjk in itertools.combinations(blist, 2):
            if not (bij["bo"] > thb_cut and bjk["bo"] > thb_cut
                    and bij["bo"] * bjk["bo"] > thb_cutsq):
                continue
            i, k = bij["j"], bjk["j"]
            boa_ij, boa_jk = bij["bo"] - thb_cut, bjk["bo"] - thb_cut
            theta = _angle(bij["d"], bjk["d"], bij["r"], bjk["r"])
            for p in ff["thb"].get((types[i], types[j], types[k]), []):
                if not abs(p["p_val1"]) > 0.001:
                    continue
                f7 = ((1 - _exp(-a["p_val3"] * boa_ij ** p["p_val4"]))
                      * (1 - _exp(-a["p_val3"] * boa_jk ** p["p_val4"])))
                e7 = _exp(-p["p_val7"] * dang)
                f8 = a["p_val5"] - (a["p_val5"] - 1) * (2 + e6) / (1 + e6 + e7)
                theta0 = (180.0 - p["theta_00"] * (1.0 - _exp(-gp[17] * (2.0 - sbo2)))) * PI_R / 180
                g = _exp(-p["p_val2"] * (theta0 - theta) ** 2)
                e["ev"] += f7 * f8 * (p["p_val1"] * (1 - g) if p["p_val1"] >= 0
                                      else -p["p_val1"] * g)
                e["epen"] += (p["p_pen1"] * f9 * _exp(-gp[19] * (boa_ij - 2) ** 2)
                              * _exp(-gp[19] * (boa_jk - 2) ** 2))
                s = atom["S"]
                e["ecoa"] += (p["p_coa1"] * coa_j
                              * _exp(-gp[38] * (s[i] - boa_ij) ** 2)
                              * _exp(-gp[38] * (s[k] - boa_jk) ** 2)
                              * _exp(-gp[30] * (boa_ij - 1.5) ** 2)
                              * _exp(-gp[30] * (boa_jk - 1.5) ** 2))


def _torsion_energies(ff, bonds, atom, types, e, thb_cut):
    """Sections 11 and 12."""
    gp = ff["gp"]
    for j, blist in bonds.items():
        for bjk in blist:
            k, s_jk = bjk["j"], bjk["shift"]
            if (j, (0, 0, 0)) > (k, s_jk) or not bjk["bo"] > thb_cut:
                continue  # each central bond once
            dsum = atom["delta_ang"][j] + atom["delta_ang"][k]
            e3, e4 = _exp(-gp[24] * dsum), _exp(gp[25] * dsum)
            f11 = (2 + e3) / (1 + e3 + e4)
            for bij in blist:
                if bij is bjk or not bij["bo"] > thb_cut:
                    continue
                i = bij["j"]
                th1 = _angle(bij["d"], bjk["d"], bij["r"], bjk["r"])
                for bkl in bonds[k]:
                    l_shift = tuple(a + b for a, b in zip(s_jk, bkl["shift"]))
                    if bkl["j"] == j and not any(l_shift):
                        continue  # the bond back to j
                    l = bkl["j"]
                    if (i, bij["shift"]) == (l, l_shift):
                        continue  # same image at both ends
                    p = ff["fbp"].get((types[i], types[j], types[k], types[l]))
                    if p is None or not (bkl["bo"] > thb_cut
                                         and bij["bo"] * bjk["bo"] * bkl["bo"] > thb_cut):
                        continue
                    th2 = _angle(-bjk["d"], bkl["d"], bjk["r"], bkl["r"])
                    dij, djk, dkl = bij["d"], bjk["d"], bkl["d"]
                    c = -(dij @ djk) * (djk @ dkl) + (djk @ djk) * (dij @ dkl)
                    s = -bjk["r"] * (dij @ np.cross(djk, dkl))
                    omega = math.atan2(s, c)
                    boa = [x["bo"] - thb_cut for x in (bij, bjk, bkl)]
                    f10 = math.prod(1 - _exp(-gp[23] * x) for x in boa)
                    v2 = p["V2"] * _exp(p["p_tor1"] * (2.0 - bjk["bo_pi"] - f11) ** 2)
                    cv = 0.5 * (p["V1"] * (1 + math.cos(omega)) + v2 * (1 - math.cos(2 * omega))
                                + p["V3"] * (1 + math.cos(3 * omega)))
                    sines = math.sin(th1) * math.sin(th2)
                    e["et"] += f10 * sines * cv
                    f12 = math.prod(_exp(-gp[27] * (x - 1.5) ** 2) for x in boa)
                    e["eco"] += p["p_cot1"] * f12 * (1 + (math.cos(omega) ** 2 - 1) * sines)


def _hbond_energy(ff, bonds, pairs, types, e, hbond_cut):
    """Section 13."""
    at = ff["atoms"]
    for j, blist in bonds.items():
        if at[types[j]]["p_hbond"] != 1:
            continue
        donors = [b for b in blist if at[types[b["j"]]]["p_hbond"] == 2 and b["bo"] >= 0.01]
        for jj, k, _shift, d, r in pairs:
            if jj != j or r > hbond_cut or at[types[k]]["p_hbond"] != 2:
                continue
            for b in donors:
                p = ff["hbp"].get((types[b["j"]], types[j], types[k]))
                if b["j"] == k or p is None or p["r0_hb"] <= 0:
                    continue
                theta = _angle(b["d"], d, b["r"], r)
                e["ehb"] += (p["p_hb1"] * (1 - _exp(-p["p_hb2"] * b["bo"]))
                             * _exp(-p["p_hb3"] * (p["r0_hb"] / r + r / p["r0_hb"] - 2))
                             * math.sin(theta / 2) ** 4)


def _nonbonded_energies(ff, pairs, types, q, e, acks2_u):
    """Sections 15, 16 and the ACKS2 pair term of section 20."""
    gp, at, tb = ff["gp"], ff["atoms"], ff["tb"]
    coeffs, pv = taper_coeffs(gp[11], gp[12]), gp[28]
    for i, j, _shift, _d, r in pairs:
        if r > gp[12]:
            continue
        p = tb[types[i]][types[j]]
        tap = taper(coeffs, r)
        f13 = (r**pv + (1.0 / p["gamma_w"]) ** pv) ** (1.0 / pv) if ff["vdw_type"] in (1, 3) else r
        ev = p["D"] * (_exp(p["alpha"] * (1 - f13 / p["r_vdw"]))
                       - 2 * _exp(0.5 * p["alpha"] * (1 - f13 / p["r_vdw"])))
        if ff["vdw_type"] in (2, 3):
            ev += p["ecore"] * _exp(p["acore"] * (1 - r / p["rcore"]))
            if ff["lgflag"]:
                ev -= p["lgcij"] / (r**6 + p["lgre"] ** 6)
        # pairs are listed in both orders: half of each
        e["ew"] += 0.5 * tap * ev
        e["ep"] += 0.5 * C_ELE * q[i] * q[j] * tap / (r**3 + p["shield"]) ** (1.0 / 3.0)
        if acks2_u is not None:
            xcut = 0.5 * (at[types[i]]["bcut_acks2"] + at[types[j]]["bcut_acks2"])
            if r <= xcut:
                x = r / xcut
                soft = gp[34] * x**3 * (1 - x) ** 6
                if soft > 0:
                    e["ep"] -= 0.25 * K_POL * soft * (acks2_u[i] - acks2_u[j]) ** 2


def energy_terms(ff, pos, cell, pbc, types, q, *, bond_cut=5.0, hbond_cut=7.5, thb_cut=0.001,
                 thb_cutsq=0.00001, enobonds=True, acks2_u=None):
    """The 14 components of `compute pair reaxff` (kcal/mol) at fixed charges q."""
    pos = np.asarray(pos, float)
    n = len(pos)
    e = dict.fromkeys(TERM_NAMES, 0.0)
    pairs = image_pairs(pos, cell, pbc, max(bond_cut, hbond_cut, ff["gp"][12]))
    bonds, atom = _bond_orders(ff, pairs, types, n, bond_cut)
    _bond_energy(ff, bonds, atom, types, e)
    _atom_energies(ff, bonds, atom, types, e, enobonds)
    _angle_energies(ff, bonds, atom, types, e, thb_cut, thb_cutsq)
    _torsion_energies(ff, bonds, atom, types, e, thb_cut)
    if hbond_cut > 0:
        _hbond_energy(ff, bonds, pairs, types, e, hbond_cut)
    _nonbonded_energies(ff, pairs, types, q, e, acks2_u)
    for i in range(n):  # section 17
        a = ff["atoms"][types[i]]
        e["eqeq"] += K_POL * (a["chi"] * q[i] + a["eta_lmp"] / 2 * q[i] ** 2)
        if acks2_u is not None:
            e["eqeq"] += K_POL * q[i] * acks2_u[i]
    return e


def qeq_matrix(ff, pos, cell, pbc, types, swa=0.0, swb=10.0):
    """Section 19: hardness matrix H (eV) and electronegativities chi."""
    at = ff["atoms"]
    coeffs = taper_coeffs(swa, swb)
    h = np.diag([at[t]["eta_lmp"] for t in types]).astype(float)
    for i, j, _shift, _d, r in image_pairs(np.asarray(pos, float), cell, pbc, swb):
        shield = (at[types[i]]["gamma"] * at[types[j]]["gamma"]) ** -1.5
        h[i, j] += taper(coeffs, r) * K_QEQ / (r**3 + shield) ** (1.0 / 3.0)
    return h, np.array([at[t]["chi"] for t in types])


def qeq_charges(ff, pos, cell, pbc, types, swa=0.0, swb=10.0):
    """Section 19: exact QEq charges with total charge zero."""
    h, chi = qeq_matrix(ff, pos, cell, pbc, types, swa, swb)
    s = np.linalg.solve(h, -chi)
    t = np.linalg.solve(h, -np.ones(len(chi)))
    return s - s.sum() / t.sum() * t


def acks2_solution(ff, pos, cell, pbc, types, swa=0.0, swb=10.0):
    """Section 20: exact ACKS2 charges q and potentials u."""
    h, chi = qeq_matrix(ff, pos, cell, pbc, types, swa, swb)
    at, gp, n = ff["atoms"], ff["gp"], len(chi)
    x_mat = np.zeros((n, n))
    for i, j, _shift, _d, r in image_pairs(np.asarray(pos, float), cell, pbc, swb):
        bcut = 0.5 * (at[types[i]]["bcut_acks2"] + at[types[j]]["bcut_acks2"])
        if r <= bcut:
            val = gp[34] * (r / bcut) ** 3 * (1 - r / bcut) ** 6
            x_mat[i, j] += val
            x_mat[i, i] -= val
    m = np.zeros((2 * n + 2, 2 * n + 2))
    m[:n, :n] = h
    m[:n, n:2 * n] = m[n:2 * n, :n] = np.eye(n)
    m[n:2 * n, n:2 * n] = x_mat
    m[2 * n, n:2 * n] = m[n:2 * n, 2 * n] = 1.0
    m[2 * n + 1, :n] = m[:n, 2 * n + 1] = 1.0
    rhs = np.zeros(2 * n + 2)
    rhs[:n] = -chi
    sol = np.linalg.solve(m, rhs)
    return sol[:n], sol[n:2 * n]
