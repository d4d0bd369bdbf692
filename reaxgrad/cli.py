"""The `reaxgrad` command: version, environment report and demos."""
from __future__ import annotations

import argparse
import platform
import shutil
import sys

from . import __version__


def _info(args) -> int:
    import numpy as np
    import scipy

    from reaxgrad.core.backend import cupy_module
    from reaxgrad.core.executors import EXECUTORS

    lines = [
        f"reaxgrad {__version__}",
        f"python   {platform.python_version()} ({sys.executable})",
        f"numpy    {np.__version__}",
        f"scipy    {scipy.__version__}",
    ]
    try:
        import ase

        lines.append(f"ase      {ase.__version__}")
    except ImportError:
        lines.append("ase      not installed")
    cc = shutil.which("cc") or shutil.which("gcc")
    lines.append(f"C compiler: {cc or 'not found'}")
    try:
        import cupy

        lines.append(f"cupy     {cupy.__version__}")
    except Exception:  # noqa: BLE001 - any import failure means "no cupy"
        lines.append("cupy     not installed")
    gpu = cupy_module()
    lines.append(f"GPU      {'found' if gpu is not None else 'not found'}")
    lines.append(f"backend  {'cupy' if gpu is not None else 'numpy'} "
                 f"(jit executors: {', '.join(sorted(EXECUTORS))})")
    print("\n".join(lines))
    return 0


def _demo(args) -> int:
    from .demo import run_demo

    return run_demo(n_atoms=args.atoms, steps=args.steps)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="reaxgrad",
        description="Reactive molecular dynamics and ReaxFF fitting on a JAX-like engine.",
    )
    parser.add_argument("--version", action="version", version=f"reaxgrad {__version__}")
    sub = parser.add_subparsers(dest="command")
    p_info = sub.add_parser("info", help="print versions, backend, compiler and GPU status")
    p_info.set_defaults(func=_info)
    p_demo = sub.add_parser(
        "demo", help="engine demo: Lennard-Jones cluster energy, forces, Hessian, relaxation"
    )
    p_demo.add_argument("--atoms", type=int, default=38, help="cluster size (default 38)")
    p_demo.add_argument("--steps", type=int, default=500, help="max L-BFGS iterations")
    p_demo.set_defaults(func=_demo)
    from .dataset_cmd import add_parser as add_dataset
    from .energy_cmd import add_parser as add_energy

    add_energy(sub)
    from .fit_cmd import add_parsers as add_fit

    add_fit(sub)
    add_dataset(sub)
    from .md_cmd import add_parser as add_md

    add_md(sub)
    __import__("reaxgrad.vibrations_cmd", fromlist=["add_parser"]).add_parser(sub)
    __import__("reaxgrad.minimize_cmd", fromlist=["add_parser"]).add_parser(sub)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
