"""`reaxgrad dataset convert`: DFT data (extxyz, ASE databases, anything ASE reads) to ReaxFF
``geo`` + ``trainset.in``, and ``geo`` + ``trainset.in`` back to extxyz or an ASE database.

    reaxgrad dataset convert a.extxyz b.db --out DIR [--reference min] [--force-weight 5]
        -> DIR/geo, DIR/trainset.in
    reaxgrad dataset convert geo --trainset trainset.in --out DIR [--format extxyz|db]
        -> DIR/data.extxyz or DIR/data.db

The direction follows the input (a geo file, or not) unless ``--format`` says it.  Bad input
prints one line ``reaxgrad dataset: error: ...`` and exits with status 2.
"""
from __future__ import annotations

import json
import sys
import warnings
from collections import Counter
from pathlib import Path

PROG = "reaxgrad dataset"
_DFT_ONLY = ("reference", "element_energies", "energy_weight", "force_weight", "charge_weight",
             "energy_key", "forces_key", "charges_key", "total_charge_key")


class UsageError(ValueError):
    """A command line that cannot be carried out."""


def is_geo(path) -> bool:
    """Whether ``path`` is a ReaxFF geo file (by name, else by its first BGF keywords)."""
    path = Path(path)
    if path.name == "geo" or path.suffix.lower() in (".geo", ".bgf"):
        return True
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = handle.read(4000)
    except OSError:
        return False
    return any(line.split()[:1] in (["BIOGRF"], ["XTLGRF"]) for line in head.splitlines())


def element_energies(text: str | None) -> dict[str, float] | None:
    """``--element-energies``: ``H=-13.6,O=-432.1`` (eV) or a JSON file of that mapping."""
    if text is None:
        return None
    if Path(text).is_file():
        values = json.loads(Path(text).read_text())
    else:
        values = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            element, sep, value = part.partition("=")
            if not sep:
                raise UsageError(f"--element-energies: expected El=eV pairs, got {part!r}")
            values[element.strip()] = value
    try:
        return {str(k): float(v) for k, v in values.items()}
    except (TypeError, ValueError, AttributeError):
        raise UsageError(f"--element-energies: not a mapping of element -> eV: {text!r}") \
            from None


def convert(args) -> int:
    inputs = [Path(p) for p in args.inputs]
    geo_input = is_geo(inputs[0]) and len(inputs) == 1
    fmt = args.format or ("extxyz" if geo_input else "geo")
    out = Path(args.out)
    if fmt == "geo":
        return _to_geo(args, inputs, out)
    if not geo_input:
        raise UsageError(f"--format {fmt} converts one geo file (with --trainset); "
                         f"got {' '.join(map(str, inputs))}")
    return _from_geo(args, inputs[0], out, fmt)


def _to_geo(args, inputs, out: Path) -> int:
    from reaxgrad.datasets.dft import read_dft
    from reaxgrad.datasets.geo_write import write_geo
    from reaxgrad.datasets.trainset_write import write_trainset

    if args.trainset:
        raise UsageError("--trainset goes with a geo input (--format extxyz or db)")
    geo_inputs = [str(p) for p in inputs if is_geo(p)]
    if geo_inputs:
        raise UsageError(f"{geo_inputs[0]} is a geo file; --format geo converts extxyz / "
                         "ASE database input")
    options = {k: getattr(args, k) for k in _DFT_ONLY if getattr(args, k) is not None}
    options["element_energies"] = element_energies(options.get("element_energies"))
    structures, items = read_dft(inputs, forces=not args.no_forces,
                                 allow_missing=args.allow_missing, **options)
    out.mkdir(parents=True, exist_ok=True)
    write_geo(out / "geo", structures)
    write_trainset(out / "trainset.in", items)
    counts = Counter(item.category for item in items)
    print(f"{len(structures)} structures -> {out / 'geo'}")
    print(f"{len(items)} items ({counts['ENERGY']} ENERGY, {counts['FORCE']} FORCE, "
          f"{counts['CHARGE']} CHARGE) -> {out / 'trainset.in'}")
    return 0


def _from_geo(args, geo, out: Path, fmt: str) -> int:
    from reaxgrad.datasets import read_geo
    from reaxgrad.datasets.dft_export import attach_targets, write_dft
    from reaxgrad.datasets.trainset import TrainsetWarning, read_trainset

    given = [k for k in _DFT_ONLY if getattr(args, k) is not None]
    if given or args.no_forces:
        flag = "--" + (given[0] if given else "no_forces").replace("_", "-")
        raise UsageError(f"{flag} applies to extxyz / ASE database input, not to a geo file")
    structures = read_geo(geo)
    items = []
    if args.trainset:
        sizes = {str(a.info["name"]): len(a) for a in structures}
        with warnings.catch_warnings(record=True) as dropped:
            warnings.simplefilter("always", TrainsetWarning)
            items = read_trainset(args.trainset, sizes, strict=not args.allow_missing).items
        if dropped:
            print(f"{len(dropped)} trainset lines name structures absent from {geo} and were "
                  "dropped")
    structures, unused = attach_targets(structures, items)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"data.{fmt}"
    write_dft(target, structures, fmt)
    with_energy = sum(a.calc.results.get("energy") is not None for a in structures)
    with_forces = sum("forces" in a.calc.results for a in structures)
    print(f"{len(structures)} structures ({with_energy} with energies, {with_forces} with "
          f"forces) -> {target}")
    if unused:
        counts = ", ".join(f"{n} {c}" for c, n in Counter(i.category for i in unused).items())
        print(f"{len(unused)} of {len(items)} trainset items have no per-structure form and "
              f"were left out ({counts})")
    return 0


def run(args) -> int:
    from reaxgrad.errors import InputFileError

    try:
        return convert(args)
    except (InputFileError, ValueError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


def add_parser(sub):
    p = sub.add_parser("dataset", help="training-data conversion (extxyz / ASE db <-> geo + "
                       "trainset.in)")
    commands = p.add_subparsers(dest="dataset_command", required=True)
    c = commands.add_parser("convert", help="extxyz / ASE db -> geo + trainset.in, or geo + "
                            "trainset.in -> extxyz / db")
    c.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="extxyz / ASE database / ASE-readable files, or one geo file")
    c.add_argument("--out", required=True, help="output folder")
    c.add_argument("--format", choices=["geo", "extxyz", "db"],
                   help="output format (default: extxyz for a geo input, else geo)")
    c.add_argument("--trainset", help="trainset.in that goes with a geo input")
    c.add_argument("--reference", help="energy reference: min (default; lowest energy of the "
                   "same composition), structure:NAME|INDEX, elements, absolute, none")
    c.add_argument("--element-energies", dest="element_energies",
                   help="for --reference elements: El=eV,... or a JSON file")
    for name, default in (("energy", "1.0 kcal/mol"), ("force", "1.0 kcal/mol/A"),
                          ("charge", "0.1 e")):
        c.add_argument(f"--{name}-weight", dest=f"{name}_weight", type=float,
                       help=f"{name} weight (accuracy; default {default}; info"
                            f"['{name}_weight'] overrides per structure)")
    c.add_argument("--energy-key", dest="energy_key", help="info key of the energy (eV; "
                   "default: the calculator's)")
    c.add_argument("--forces-key", dest="forces_key", help="arrays key of the forces (eV/A; "
                   "default: the calculator's)")
    c.add_argument("--charges-key", dest="charges_key", help="arrays key of atomic charges "
                   "(CHARGE items; default: none)")
    c.add_argument("--total-charge-key", dest="total_charge_key",
                   help="info key of the total charge (default: charge)")
    c.add_argument("--no-forces", dest="no_forces", action="store_true",
                   help="no FORCE items")
    c.add_argument("--allow-missing", dest="allow_missing", action="store_true",
                   help="structures without forces / charges get no such items; trainset "
                        "lines naming structures absent from the geo file are dropped "
                        "(default: errors)")
    c.set_defaults(func=run)
