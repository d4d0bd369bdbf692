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
    lines += _jit_backend_lines(gpu is not None)
    print("\n".join(lines))
    return 0


def _jit_backend_lines(gpu: bool) -> list[str]:
    """What `jit` runs on here: the active executor, how it was chosen, its compiler and cache."""
    import os

    from reaxgrad.core.executors import ENV_VAR, available_backends, resolve_backend
    from reaxgrad.core.fusion import runtime_c, runtime_cuda

    active = resolve_backend(None)
    how = f"from {ENV_VAR}" if os.environ.get(ENV_VAR, "").strip() not in ("", "auto") else \
        "automatic"
    lines = [f"backend  {'cupy' if gpu else 'numpy'} arrays; jit executor: {active} ({how}); "
             f"available: {', '.join(available_backends())}"]
    if runtime_c.available():
        cc = runtime_c.compiler()
        ident, flags = runtime_c._probe_compiler(cc)
        features = [f for f, on in (("OpenMP", "-fopenmp" in flags),
                                    ("-march=native", "-march=native" in flags),
                                    ("libmvec SIMD math", any(f.startswith("-DRG_MVEC")
                                                              for f in flags))) if on]
        lines.append(f"fused C  {ident.split(' | ')[0]} ({', '.join(features) or 'plain'}); "
                     f"kernel cache {runtime_c.cache_dir()}")
    lines.append(f"fused GPU {'CuPy RawKernel on the GPU' if gpu else 'no GPU'}; nvcc "
                 f"{'found' if runtime_cuda.nvcc() else 'not found'}")
    return lines


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
    __import__("reaxgrad.batch_cmd", fromlist=["add_parser"]).add_parser(sub)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
