"""The installed package list covers every source package (a non-editable install of a
package missing from pyproject's list would fail at import time)."""
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    dirs = config["package-dir"]
    found = set()
    for name, rel in dirs.items():
        base = ROOT / rel
        for init in base.rglob("__init__.py"):
            sub = init.parent.relative_to(base).parts
            found.add(".".join((name,) + sub))
    missing = sorted(found - listed)
    assert not missing, f"packages missing from pyproject.toml: {missing}"
    assert listed <= found, f"listed but absent: {sorted(listed - found)}"
