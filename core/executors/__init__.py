"""Executors turn an optimized Program into a Python callable `run(*consts, *args) -> list`.
jit picks one by name; a fusing kernel backend registers here without touching tracing."""
from __future__ import annotations

from collections.abc import Callable

from ..ir import Program

EXECUTORS: dict[str, Callable[[Program], Callable]] = {}


def register_executor(name: str, compile_fn: Callable[[Program], Callable]) -> None:
    """compile_fn(program) -> run(*consts, *args) returning the list of outputs."""
    EXECUTORS[name] = compile_fn


AUTO = "auto"
AUTO_FUSED = True  # the automatic choice is the fused backend when a C compiler works
ENV_VAR = "REAXGRAD_JIT_BACKEND"


def resolve_backend(name: str | None) -> str:
    """The executor a jit with backend `name` uses: an explicit name as given; None or "auto":
    the REAXGRAD_JIT_BACKEND environment variable when set, else the automatic choice."""
    import os

    if name is None or name == AUTO:
        env = os.environ.get(ENV_VAR, "").strip()
        if env and env != AUTO:
            return env
        return default_backend()
    return name


def default_backend() -> str:
    """The automatic choice: "fused" (generated C kernels; CUDA for CuPy arrays) when a C
    compiler is found, else "interpreter" with a one-line notice."""
    from ..fusion import runtime_c

    if AUTO_FUSED and runtime_c.available():
        return "fused"
    if not AUTO_FUSED:
        return "interpreter"
    from .fused import _notice

    _notice("reaxgrad: no C compiler found (set REAXGRAD_CC to one); jit runs on the NumPy "
            "interpreter")
    return "interpreter"


def available_backends() -> list[str]:
    """Executors that can run here: the interpreter always, "fused" with a C compiler."""
    from ..fusion import runtime_c

    return ["interpreter"] + (["fused"] if runtime_c.available() else [])


def get_executor(name: str) -> Callable[[Program], Callable]:
    name = resolve_backend(name)
    try:
        return EXECUTORS[name]
    except KeyError:
        raise ValueError(
            f"unknown jit backend {name!r}; available: {', '.join(sorted(EXECUTORS))}"
        ) from None


from . import fused, interpreter  # noqa: E402,F401,I001  (register "fused", "interpreter")
