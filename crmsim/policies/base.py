"""The shape every policy has: ``decide(view, budget, step) -> Actions``.

A policy sees only the firm's knowledge (``FirmView``), spends the CRM budget it is given
through its tactics, and returns ``Actions``; the model applies them. One framework can replace
another in a config because they all have this shape.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..actions import Actions
from ..firm import FirmView
from ..tactics import Tactic


class Policy:
    name: ClassVar[str]

    def __init__(self, tactics: dict[str, tuple[Tactic, float]], params: dict[str, Any],
                 termination: Any = None) -> None:
        self.tactics = tactics
        self.params = params
        self.termination = termination

    def decide(self, view: FirmView, budget: float, step: int) -> Actions:
        """Spend each enabled tactic's share of the budget on it."""
        actions = Actions(view.n)
        for tactic, share in self.tactics.values():
            tactic.run(view, budget * share, actions)
        return actions

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tactics={list(self.tactics)})"
