"""LAMMPS NVE (``fix nve`` + ``fix qeq/reaxff``) from given positions, velocities and masses:
the reference trajectories of the MD tests. Velocities in Å/fs, ASE frame in and out."""
from __future__ import annotations

import numpy as np

from reaxgrad.forcefields import lammps_oracle as lo


def lammps_nve(atoms, ffield, velocities, *, timestep=0.25, steps=400, qeq_tolerance=1e-10):
    """(positions (n, 3), velocities (n, 3), potential energy kcal/mol) after ``steps`` steps
    of LAMMPS NVE, in the ASE frame. Positions are returned as the displacement from the
    start added to the start (no wrapping), so they compare directly with an unwrapped run."""
    lammps = lo.import_lammps()
    ffield = lo.potential_path(ffield)
    header = lo.read_ffield_header(ffield)
    symbols = atoms.get_chemical_symbols()
    n = len(symbols)
    frame = lo.to_lammps_frame(atoms)
    pair_style = (f"pair_style reaxff NULL checkqeq yes lgvdw "
                  f"{'yes' if header['lgvdw'] else 'no'} enobonds yes")
    lines, elements = lo._setup_lines(frame, symbols, header, ffield, pair_style)
    gp = header["general"]
    lmp = lo._new_instance(lammps)
    try:
        lmp.commands_list(lines)
        lo._create_atoms(lmp, frame, symbols, elements, np.zeros(n))
        ids = lmp.numpy.extract_atom("id")[:n]
        v = np.asarray(velocities, dtype=float) @ frame.rotation
        lmp.numpy.extract_atom("v")[:n] = v[ids - 1]
        image0 = _image_flags(lmp, n)
        lmp.commands_list([
            "neighbor 2.0 bin", "neigh_modify every 1 delay 0 check yes",
            f"fix qeq all qeq/reaxff 1 {lo._num(gp[11])} {lo._num(gp[12])} "
            f"{lo._num(qeq_tolerance)} reaxff maxiter 1000",
            "fix nve all nve", f"timestep {lo._num(timestep)}",
            "thermo_style custom step pe",
            f"run {int(steps)}"])
        xu = _unwrapped(lmp, n, frame.lattice, image0)
        vel = lo._by_id(lmp, "v", n)
        pe = float(lmp.get_thermo("pe"))
    finally:
        lmp.close()
    start = frame.positions
    moved = frame.to_ase(xu - start)
    # the frame wrapped the start positions: map the displacement back onto the input ones
    return atoms.positions + moved, frame.to_ase(vel), pe


def _image_flags(lmp, n):
    """(n, 3) image flags by atom id (LAMMPS packs them in one integer, 10 bits each)."""
    ids = lmp.numpy.extract_atom("id")[:n]
    image = np.array(lmp.numpy.extract_atom("image")[:n], dtype=np.int64)
    out = np.empty((n, 3), dtype=np.int64)
    out[ids - 1] = np.column_stack([(image >> shift & 1023) for shift in (0, 10, 20)])
    return out


def _unwrapped(lmp, n, lattice, image0):
    """LAMMPS-frame positions by atom id, unwrapped by the image flags gained since image0."""
    ids = lmp.numpy.extract_atom("id")[:n]
    x = np.empty((n, 3))
    x[ids - 1] = np.array(lmp.numpy.extract_atom("x")[:n], dtype=float)
    # the library interface created the atoms with packed image 0 (flags -512), so flags
    # wrap around: take the change modulo the 10-bit field
    gained = (_image_flags(lmp, n) - image0 + 512) % 1024 - 512
    return x + gained @ lattice
