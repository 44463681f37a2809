"""Command-line overrides as crmsim reads them: the values of a job, and file paths made
absolute once, against the directory the user ran from, before anything is planned or run."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError

# Config keys that name a file the user gives: resolved against the directory crmsim was run
# from, so jobs find it wherever a launcher runs them (hydra.job.chdir=true included).
PATH_KEYS = ("network.path",)


def parser(config_loader=None):
    """Hydra's override parser (with a config loader, ``group=glob(*)`` lists the options)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create(config_loader=config_loader)


def key_of(line: str) -> str:
    return line.lstrip("+~").partition("=")[0]


def is_hydra(line: str) -> bool:
    return line.lstrip("+~").startswith(("hydra.", "hydra/"))


def params_of(overrides: Sequence[str]) -> dict[str, Any]:
    """``{key: value}`` of a job's overrides, values typed as Hydra reads them."""
    out: dict[str, Any] = {}
    for o in parser().parse_overrides(list(overrides)):
        if o.is_hydra_override():
            continue
        try:
            out[o.key_or_group] = o.value()
        except Exception:  # a value Hydra cannot type: keep what was written
            out[o.key_or_group] = o.get_value_element_as_str()
    return out


def _quote(text: str) -> str:
    """A value as Hydra's grammar reads it back: as written when it is a plain path, else
    quoted (commas, spaces, brackets, parentheses ...)."""
    if re.fullmatch(r"[\w./~+-]+", text):
        return text
    return "'" + text.replace("'", "\\'") + "'"


def absolute(path: str, cwd: Path) -> str:
    p = Path(os.path.expanduser(path))
    return str(p if p.is_absolute() else (cwd / p))


def resolve_paths(overrides: Sequence[str], cwd: Path | None = None) -> list[str]:
    """The overrides with every relative file path (``network.path=friends.csv``, also swept:
    ``network.path=a.csv,b.csv``) made absolute against ``cwd`` (default: the current
    directory). Other overrides are returned as written."""
    from hydra.core.override_parser.types import ChoiceSweep

    cwd = Path.cwd() if cwd is None else cwd
    out = []
    for line in overrides:
        if key_of(line) not in PATH_KEYS:
            out.append(line)
            continue
        try:
            o = parser().parse_override(line)
            value = o.value()
        except Exception:       # a malformed line: composing it reports the error
            out.append(line)
            continue
        prefix = line[: len(line) - len(line.lstrip("+~"))]
        if isinstance(value, ChoiceSweep) and all(isinstance(v, str) for v in value.list):
            out.append(f"{prefix}{o.key_or_group}="
                       + ",".join(_quote(absolute(v, cwd)) for v in value.list))
        elif isinstance(value, str) and value:
            out.append(f"{prefix}{o.key_or_group}={_quote(absolute(value, cwd))}")
        else:
            out.append(line)
    return out


def check_literal_path(key: str, path: str) -> None:
    """A directory name that Hydra would read as an interpolation is refused, not mangled."""
    if "${" in path:
        raise ConfigError(key, path, "a directory path without '${' (Hydra would read it as an "
                          "interpolation); write the path out")
