"""Errors for bad input files: every message names the file, the line and the field."""
from __future__ import annotations


class InputFileError(ValueError):
    """A malformed input file; `path` and `lineno` say where."""

    def __init__(self, path, lineno: int, message: str):
        self.path = str(path)
        self.lineno = lineno
        super().__init__(f"{path} line {lineno}: {message}")
