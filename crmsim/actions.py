"""Actions: the only way a policy changes the world.

A policy returns one ``Actions`` per step: per-person effect arrays (allocated on first use) and
money spent by ledger category. The model applies them; nothing else writes to the people.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# effect name -> what the model does with it (see CRMModel.apply_actions)
PERSON_EFFECTS = {
    "adoption_lift": "extra annual adoption hazard for a prospect this step (marketing reach)",
    "return_lift": "extra annual return hazard for a lapsed customer this step (win-back offers)",
    "experience_bonus": "added to experienced quality at this step's encounter",
    "noise_cut": "share of experience noise removed this step (consistent channels)",
    "recovery_lift": "added to the probability that a complaint is handled well this step",
    "spend_uplift": "relative extra spend this step (cross-sell, up-sell)",
    "encounter_lift": "added to the probability of meeting the firm this step (contacts)",
    "commitment": "added to commitment (persists)",
    "switching_cost": "added to switching cost (persists)",
    "price": "relative price change (persists): +0.1 raises the price by 10%",
    "customization": "share of the remaining gap between offering and needs closed (persists)",
    "sentiment": "added to sentiment (persists, fades like any sentiment)",
    "knowledge": "an interaction that teaches the firm about the person",
    "terminate": "the firm ends the relationship (1 = yes)",
}
FIRM_EFFECTS = ("quality", "training")


@dataclass
class Actions:
    n: int
    person: dict[str, np.ndarray] = field(default_factory=dict)
    firm: dict[str, float] = field(default_factory=dict)
    spend: dict[str, float] = field(default_factory=dict)

    def effect(self, name: str) -> np.ndarray:
        """The array for a per-person effect, created as zeros on first use."""
        if name not in PERSON_EFFECTS:
            raise KeyError(f"unknown person effect {name!r}; known: {', '.join(PERSON_EFFECTS)}")
        if name not in self.person:
            self.person[name] = np.zeros(self.n, dtype=np.float32)
        return self.person[name]

    def add(self, name: str, idx: np.ndarray, amount: float | np.ndarray) -> None:
        """Add ``amount`` to the effect for the people ``idx`` (unique indices, as tactics select)."""
        self.effect(name)[idx] += amount

    def adjust_firm(self, name: str, delta: float) -> None:
        if name not in FIRM_EFFECTS:
            raise KeyError(f"unknown firm effect {name!r}; known: {', '.join(FIRM_EFFECTS)}")
        self.firm[name] = self.firm.get(name, 0.0) + delta

    def pay(self, category: str, amount: float) -> None:
        if amount > 0:
            self.spend[category] = self.spend.get(category, 0.0) + float(amount)

    @property
    def total_spend(self) -> float:
        return float(sum(self.spend.values()))
