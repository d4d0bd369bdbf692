"""`reaxgrad md INPUT --ffield F ...`: ReaxFF molecular dynamics.

Units as LAMMPS `real`: time step in fs, temperature in K, pressure in atm; the thermo log in
kcal/mol. Trajectory frames (ase.io, format from the extension) hold positions, momenta,
cell and the calculator's results in ASE units (energy eV, forces eV/Å, charges e, stress
eV/Å^3). With ``--restart FILE`` a checkpoint is written atomically every
``--checkpoint-every`` steps and at the end; running the same command again resumes from it
and the outputs come out as an uninterrupted run's.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from reaxgrad.md.dynamics import ENSEMBLES
from reaxgrad.md.forces import DEFAULT_SKIN

DEFAULT_DAMPING = 100.0  # fs, thermostat time constant
DEFAULT_PRESSURE_DAMPING = 1000.0  # fs
DEFAULT_BULK_MODULUS = 1.0e4  # atm, Berendsen barostat's assumed modulus (~1 GPa)

RESUME_KEYS = ("input", "index", "ffield", "convention", "charge_method", "solver", "ensemble",
               "timestep", "temperature", "pressure", "seed", "interval", "damping",
               "pressure_damping", "bulk_modulus", "barostat", "skin", "trajectory", "log",
               "species", "bonds", "species_cutoff", "charge")


class MDError(ValueError):
    """Bad input or settings for `reaxgrad md` (message names the file or option)."""


def _settings(args) -> dict:
    return {k: (str(getattr(args, k)) if isinstance(getattr(args, k), Path)
                else getattr(args, k)) for k in RESUME_KEYS}


def _check_args(args):
    check_options(args)
    if args.interval < 1:
        raise MDError(f"--interval must be >= 1, got {args.interval}")


def check_options(args):
    """Refuse unusable dynamics options (time step, steps, ensemble and its settings)."""
    if args.timestep <= 0 or not np.isfinite(args.timestep):
        raise MDError(f"--timestep must be a positive number of fs, got {args.timestep}")
    if args.steps < 0:
        raise MDError(f"--steps must be >= 0, got {args.steps}")
    needs_t = args.ensemble != "nve"
    if needs_t and args.temperature is None:
        raise MDError(f"--ensemble {args.ensemble} needs --temperature")
    if args.temperature is not None and not args.temperature >= 0:
        raise MDError(f"--temperature must be >= 0 K, got {args.temperature}")
    if args.ensemble == "npt" and args.pressure is None:
        raise MDError("--ensemble npt needs --pressure (atm)")
    if args.pressure is not None and args.ensemble != "npt":
        raise MDError("--pressure is used only with --ensemble npt")
    for name in ("damping", "pressure_damping", "bulk_modulus"):
        if not getattr(args, name) > 0:
            raise MDError(f"--{name.replace('_', '-')} must be > 0")


def _load(args):
    """(atoms, model) after every input check, before any output exists."""
    from reaxgrad.inputs import check_elements, load_model, output_format, read_structure

    output_format(args.trajectory, option="--trajectory", multiple=True)
    atoms = read_structure(args.input, args.index)  # checked: NaN, empty, masses, momenta
    model = load_model(args.ffield, charge_method=args.charge_method,
                       convention=args.convention, solver=args.solver)
    check_elements(model, atoms, args.input)
    return atoms, model


def _integrator(args, forces):
    from reaxgrad.md import dynamics as d

    dt, t = args.timestep, args.temperature
    if args.ensemble == "nve":
        return d.nve(forces, dt)
    if args.ensemble == "langevin":
        return d.langevin(forces, dt, t, damping=args.damping, seed=args.seed)
    if args.ensemble == "nose-hoover":
        return d.nose_hoover(forces, dt, t, damping=args.damping)
    if args.ensemble == "berendsen":
        return d.berendsen(forces, dt, t, damping=args.damping)
    return d.berendsen_npt(forces, dt, t, args.pressure, damping=args.damping,
                           pressure_damping=args.pressure_damping,
                           bulk_modulus=args.bulk_modulus,
                           anisotropic=args.barostat == "aniso")


def dynamics(args, atoms, model, *, source):
    """(forces, integrator) of ``args``' ensemble for ``atoms``."""
    from reaxgrad.inputs import total_charge
    from reaxgrad.md.forces import TrajectoryForces

    forces = TrajectoryForces(model, atoms.get_chemical_symbols(), atoms.pbc,
                              total_charge=total_charge(atoms, args.charge),
                              charges=atoms.get_initial_charges(), skin=args.skin,
                              source=str(source))
    return forces, _integrator(args, forces)


def initial_state(args, atoms, integrator):
    """The state at step 0: the input's positions, cell, masses and momenta (or velocities
    drawn at --temperature with --seed)."""
    cell = atoms.cell.array if np.any(atoms.pbc) else np.zeros((3, 3))
    velocities = initial_velocities(atoms, args.temperature, args.seed)
    return integrator.init(atoms.positions, velocities, atoms.get_masses(), cell, atoms.pbc)


def state_atoms(template, state):
    """A copy of ``template`` at ``state`` (positions, cell, momenta) carrying the forces'
    results in ASE units (energy eV, forces eV/Å, charges e, stress eV/Å^3), and the step and
    time in ``info``."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from reaxgrad.md.units import KCAL_MOL, momenta_to_ase

    atoms = template.copy()
    atoms.calc = None
    atoms.positions = state.positions
    atoms.cell = state.cell
    atoms.set_momenta(momenta_to_ase(state.velocities, state.masses), apply_constraint=False)
    f = state.forces
    results = {"energy": float(f.energy) * KCAL_MOL, "free_energy": float(f.energy) * KCAL_MOL,
               "forces": f.forces * KCAL_MOL, "charges": np.asarray(f.charges)}
    if np.all(state.pbc):
        s = f.virial / abs(np.linalg.det(state.cell)) * KCAL_MOL
        results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
    atoms.calc = SinglePointCalculator(atoms, **results)
    atoms.info.update(step=int(state.step), time=float(state.time))
    return atoms


def initial_velocities(atoms, temperature, seed):
    """Å/fs: the input's momenta when it has any, else Maxwell–Boltzmann at ``temperature``
    (zero total momentum, scaled to exactly that temperature), else zero."""
    from reaxgrad.md.dynamics import maxwell_boltzmann
    from reaxgrad.md.units import velocities_from_ase

    masses = atoms.get_masses()
    if atoms.has("momenta") and np.any(atoms.get_momenta() != 0):
        return velocities_from_ase(atoms.get_momenta(), masses)
    if temperature:
        return maxwell_boltzmann(masses, temperature, np.random.default_rng(args_seed(seed)))
    return np.zeros((len(atoms), 3))


def args_seed(seed):
    return None if seed is None else int(seed)


class Outputs:
    """Trajectory frames, thermo log and reactive analysis, written every interval."""

    def __init__(self, args, atoms, model, forces):
        self.args = args
        self.template = atoms.copy()
        self.template.calc = None
        self.model = model
        self.forces = forces
        from reaxgrad.inputs import output_format

        self.format = output_format(args.trajectory, option="--trajectory", multiple=True)
        self.paths = [Path(args.trajectory), Path(args.log)]
        self.species = self.bonds = None
        for extra in (args.species, args.bonds):
            if extra:
                self.paths.append(Path(extra))

    def open_analysis(self, append):
        """The species / bond-table writers (a fresh run empties the files, a resumed one
        appends after the checkpointed records)."""
        from reaxgrad.md import species as sp

        symbols = self.template.get_chemical_symbols()
        if self.args.species:
            self.species = sp.SpeciesWriter(self.args.species, append=append)
        if self.args.bonds:
            cutoff = self.model.control.get("bond_graph_cutoff", sp.DEFAULT_CUTOFF)
            self.bonds = sp.BondsWriter(self.args.bonds, symbols, cutoff=cutoff,
                                        append=append)

    def close(self):
        for writer in (self.species, self.bonds):
            if writer is not None:
                writer.close()

    def start_fresh(self):
        for p in self.paths:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("")
        # binary trajectories (.traj) must not start as an empty file: ASE then sees no frames
        Path(self.args.trajectory).unlink()
        self.open_analysis(append=False)
        with open(self.args.log, "a") as f:
            f.write("# Step Time[fs] Temp[K] PotEng[kcal/mol] KinEng[kcal/mol] "
                    "TotEng[kcal/mol] Press[atm] Volume[A^3]\n")

    def __call__(self, state):
        self.write_frame(state)
        self.write_log(state)
        if self.species or self.bonds:
            self.write_analysis(state)

    def write_frame(self, state):
        from ase.io import write

        atoms = state_atoms(self.template, state)
        if self.format == "traj":  # ase.io.write(append=True) loses earlier .traj frames
            from ase.io.trajectory import Trajectory

            with Trajectory(self.args.trajectory, "a") as traj:
                traj.write(atoms)
        else:
            write(self.args.trajectory, atoms, format=self.format, append=True)

    def write_log(self, state):
        from reaxgrad.md import dynamics as d

        ke = float(d.kinetic_energy(state.velocities, state.masses))
        pe = float(state.forces.energy)
        p = float(d.pressure(state))
        vol = float(d.volume(state.cell)) if np.all(state.pbc) else float("nan")
        with open(self.args.log, "a") as f:
            f.write(f"{state.step:10d} {state.time:14.4f} "
                    f"{float(d.temperature(state.velocities, state.masses)):12.4f} "
                    f"{pe:18.8f} {ke:16.8f} {pe + ke:18.8f} {p:14.4f} {vol:14.4f}\n")

    def write_analysis(self, state):
        from reaxgrad.md import species as sp

        symbols = self.template.get_chemical_symbols()
        bonds = sp.bond_orders(self.model, state.positions, state.cell, state.pbc, symbols)
        found = sp.find_species(bonds, symbols, cutoff=self.args.species_cutoff)
        if self.species:
            self.species.write(state.step, found)
        if self.bonds:
            self.bonds.write(state.step, bonds, np.asarray(state.forces.charges),
                             molecule=found.molecule)


TEXT_TRAJECTORIES = ("extxyz", "xyz")


def restore_trajectory(path, sizes, frames):
    """Put the trajectory back as it was at the checkpoint: text formats are cut to their
    recorded size; others (ASE's .traj keeps an index in its header) are rewritten with their
    first ``frames`` frames, atomically."""
    from ase.io import read

    from reaxgrad.inputs import output_format
    from reaxgrad.md.simulate import truncate_files

    if output_format(path, option="--trajectory", multiple=True) in TEXT_TRAJECTORIES:
        truncate_files({str(path): sizes[str(path)]})
        return
    try:
        kept = read(path, index=f":{frames}")
    except Exception as exc:  # noqa: BLE001 - ASE raises many types for damaged files
        raise MDError(f"{path}: cannot read the trajectory back to resume ({exc}); delete the "
                      "checkpoint to start again") from None
    if len(kept) != frames:
        raise MDError(f"{path}: has {len(kept)} frames, the checkpoint needs {frames}")
    from reaxgrad.inputs import write_structure_atomic

    write_structure_atomic(path, kept)


def run_md(args) -> int:
    from reaxgrad.inputs import run_command

    return run_command("md", _run_md, args)


def _run_md(args) -> int:
    from reaxgrad.md.simulate import (
        Checkpoint,
        Simulation,
        file_sizes,
        load_checkpoint,
        save_checkpoint,
        truncate_files,
    )

    if args.log is None:
        args.log = str(Path(args.trajectory).with_suffix(".log"))
    _check_args(args)
    settings = _settings(args)
    checkpoint = None
    if args.restart and Path(args.restart).exists():
        checkpoint = load_checkpoint(args.restart)
        changed = {k: (checkpoint.settings.get(k), v) for k, v in settings.items()
                   if checkpoint.settings.get(k) != v}
        if changed:
            detail = ", ".join(f"{k}: {a!r} then, {b!r} now" for k, (a, b) in changed.items())
            raise MDError(f"{args.restart}: the checkpoint was written by a different run "
                          f"({detail}); use another --restart file or delete it")
    atoms, model = _load(args)
    forces, integrator = dynamics(args, atoms, model, source=args.input)
    if checkpoint is None:
        state = initial_state(args, atoms, integrator)
    else:
        forces.restore(checkpoint.lists)
        model._guess = checkpoint.solver_guess
        state = checkpoint.state
    outputs = Outputs(args, atoms, model, forces)
    if checkpoint is None:
        outputs.start_fresh()
    else:
        restore_trajectory(args.trajectory, checkpoint.outputs,
                           frames=state.step // args.interval + 1)
        truncate_files({p: n for p, n in checkpoint.outputs.items()
                        if p != str(args.trajectory)})
        outputs.open_analysis(append=True)
        if state.step >= args.steps:
            print(f"reaxgrad md: already at step {state.step} (--steps {args.steps}); nothing "
                  "to do", file=sys.stderr)
            return 0
    sim = Simulation(integrator.step, state)
    sim.attach(outputs, args.interval)

    def checkpoint_now(state):
        save_checkpoint(args.restart, Checkpoint(
            state=state, lists=forces.list_state(), solver_guess=model._guess,
            outputs=file_sizes(outputs.paths), settings=settings))

    if args.restart:
        sim.attach(checkpoint_now, args.checkpoint_every)
    from tqdm import tqdm

    try:
        with tqdm(total=args.steps, initial=state.step, unit="step", desc="reaxgrad md",
                  disable=args.quiet, file=sys.stderr, mininterval=0.5) as bar:
            state = sim.run(args.steps, observe_start=checkpoint is None,
                            progress=bar.update)
    finally:
        outputs.close()
    if args.restart:
        checkpoint_now(state)
    from reaxgrad.md import dynamics as d

    t = float(d.temperature(state.velocities, state.masses))
    print(f"reaxgrad md: {state.step} steps ({state.time:.2f} fs), T = {t:.2f} K, "
          f"PE = {float(state.forces.energy):.6f} kcal/mol; list builds: {forces.rebuilds}; "
          f"trajectory: {args.trajectory}, log: {args.log}")
    return 0


def add_parser(sub):
    p = sub.add_parser("md", help="ReaxFF molecular dynamics (NVE, Langevin, Nose-Hoover, "
                       "Berendsen NVT/NPT)",
                       description="ReaxFF molecular dynamics in LAMMPS real units (fs, K, "
                       "atm); trajectory through ase.io, thermo log in kcal/mol.")
    p.add_argument("input", help="structure file (extxyz, xyz, cif, POSCAR, BGF geo, ...)")
    p.add_argument("--index", type=int, default=0, help="structure index in the file")
    p.add_argument("--ffield", required=True, help="ReaxFF force-field file")
    add_options(p)
    p.add_argument("--interval", type=int, required=True, help="output every K steps")
    p.add_argument("--trajectory", required=True, help="trajectory file (format from the "
                   "extension: .extxyz, .traj, .xyz, ...)")
    p.add_argument("--log", default=None, help="thermo log (default: trajectory with .log)")
    p.add_argument("--species", default=None, help="species counts file (fix reaxff/species "
                   "format)")
    p.add_argument("--species-cutoff", type=float, default=0.3, help="bond-order cutoff of "
                   "the species analysis (default 0.3)")
    p.add_argument("--bonds", default=None, help="bond-order table (fix reaxff/bonds format)")
    p.add_argument("--restart", default=None, help="checkpoint file: written every "
                   "--checkpoint-every steps; if it exists, the run resumes from it")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between "
                   "checkpoints (default 100)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_md)


def add_options(p):
    """The dynamics options (also those of `reaxgrad batch md`)."""
    p.add_argument("--convention", default="consistent", choices=["consistent", "lammps"],
                   help="charge convention (default consistent: forces are the exact "
                   "derivatives of the energy, so NVE conserves it; lammps: LAMMPS's numbers)")
    p.add_argument("--charge-method", default="qeq", choices=["qeq", "eem", "acks2", "none"])
    p.add_argument("--solver", default="auto", choices=["auto", "direct", "cg"],
                   help="charge solver (auto: dense up to 1000 atoms, then warm-started CG)")
    p.add_argument("--charge", type=float, default=None, help="total charge (default: the "
                   "structure's own, else 0)")
    p.add_argument("--ensemble", default="nve", choices=list(ENSEMBLES))
    p.add_argument("--timestep", type=float, required=True, help="time step (fs)")
    p.add_argument("--steps", type=int, required=True, help="number of steps (total, "
                   "counting those of a resumed run)")
    p.add_argument("--temperature", type=float, default=None, help="target / initial "
                   "temperature (K)")
    p.add_argument("--pressure", type=float, default=None, help="target pressure (atm), npt")
    p.add_argument("--seed", type=int, default=None, help="random seed (velocities, Langevin)")
    p.add_argument("--damping", type=float, default=DEFAULT_DAMPING,
                   help=f"thermostat time constant (fs, default {DEFAULT_DAMPING:g})")
    p.add_argument("--pressure-damping", type=float, default=DEFAULT_PRESSURE_DAMPING,
                   help=f"barostat time constant (fs, default {DEFAULT_PRESSURE_DAMPING:g})")
    p.add_argument("--bulk-modulus", type=float, default=DEFAULT_BULK_MODULUS,
                   help=f"barostat's assumed bulk modulus (atm, default "
                   f"{DEFAULT_BULK_MODULUS:g})")
    p.add_argument("--barostat", default="iso", choices=["iso", "aniso"])
    p.add_argument("--skin", type=float, default=DEFAULT_SKIN,
                   help=f"neighbour-list skin (Å, default {DEFAULT_SKIN:g})")
