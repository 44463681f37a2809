"""Typed errors. Every bad input becomes a ``ConfigError`` that names the key, the value and
what is allowed; the CLI turns it into one paragraph on stderr and exit code 2."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A config value, file or CLI argument that crmsim cannot run with."""

    def __init__(self, key: str, value: Any, allowed: str, detail: str = "") -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        self.detail = detail
        text = f"Invalid value for '{key}': {value!r}. Allowed: {allowed}."
        if detail:
            text += f" {detail}"
        super().__init__(text)
