"""Executors turn an optimized Program into a Python callable `run(*consts, *args) -> list`.
jit picks one by name; a fusing kernel backend registers here without touching tracing."""
from __future__ import annotations

from collections.abc import Callable

from ..ir import Program

EXECUTORS: dict[str, Callable[[Program], Callable]] = {}


def register_executor(name: str, compile_fn: Callable[[Program], Callable]) -> None:
    """compile_fn(program) -> run(*consts, *args) returning the list of outputs."""
    EXECUTORS[name] = compile_fn


def get_executor(name: str) -> Callable[[Program], Callable]:
    try:
        return EXECUTORS[name]
    except KeyError:
        raise ValueError(
            f"unknown jit backend {name!r}; available: {', '.join(sorted(EXECUTORS))}"
        ) from None


from . import interpreter  # noqa: E402,F401  (registers "interpreter")
