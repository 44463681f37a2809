"""The install is quiet: pyproject.toml lists every config group as a package (setuptools
deprecates shipping an importable directory as package data) and states the license as an
SPDX expression."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_config_group_is_a_listed_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = set(project["tool"]["setuptools"]["packages"])
    groups = {p.parent for p in (ROOT / "configs").rglob("*.yaml")}
    wanted = {".".join(("crmsim", *p.relative_to(ROOT).parts)) for p in groups}
    assert wanted - packages == set()
    assert isinstance(project["project"]["license"], str)


def test_the_hydra_plugins_are_listed_packages():
    # crmsim's Optuna sweepers ship in the wheel as hydra_plugins.<name> (a namespace package:
    # hydra_plugins itself has no __init__.py, so the plugins of other packages join it).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = set(project["tool"]["setuptools"]["packages"])
    plugins = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "hydra_plugins").rglob("*.py")}
    assert plugins and plugins <= packages
    assert not (ROOT / "hydra_plugins" / "__init__.py").exists()
