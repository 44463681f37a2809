"""Actions: the only way a policy changes the world.

A policy returns one ``Actions`` per step: per-person effect arrays (allocated on first use) and
money spent by ledger category. The model applies them; nothing else writes to the people.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# effect name -> what the model does with it (see CRMModel.apply_actions)
PERSON_EFFECTS = {
    # this step only
    "adoption_lift": "extra annual adoption hazard for a prospect (marketing reach)",
    "return_lift": "extra annual return hazard for a lapsed customer (win-back offers)",
    "encounter_lift": "a contact: one more service encounter this step (> 0 = yes)",
    "experience_bonus": "added to experienced quality at every encounter this step (coverage)",
    "contact_bonus": "added to experienced quality at the contact's own encounter",
    "noise_cut": "share of the spread of experienced quality removed (consistent channels)",
    "recovery_lift": "added to the probability that a complaint is put right",
    "discount": "relative price cut felt this step (promotions)",
    "sales_bump": "extra purchases this step, as a share of normal (promotions)",
    "stockpile": "share of this step's normal purchases bought ahead, consumed later (promotions)",
    "churn_cut": "share of the churn hazard removed this step (value added while covered)",
    "offer_take": "chance that a satisfied customer takes a cross-sell offer (x satisfaction)",
    "offer_gain": "extra relative spend for good if the offer is taken",
    "offer_annoy": "chance that a customer who does not take the offer is annoyed",
    "annoy_hazard": "relative churn hazard added for good if annoyed",
    # lasting
    "commitment": "added to commitment",
    "switching_cost": "added to switching cost",
    "contract_days": "a contract signed now, with this term in days (the switching cost it adds "
                     "ends at expiry)",
    "expiry_spike": "extra years' worth of churn hazard felt when the contract expires",
    "exit_fee": "added to the fee charged if the customer leaves",
    "deal_seeking": "share of the remaining way to full deal-seeking",
    "price": "relative price change: +0.1 raises the price by 10%",
    "customization": "share of the gap between offering and needs closed (negative: widened)",
    "penetration": "added to the extra relative spend from cross-sell and up-sell",
    "heard": "satisfaction regained by a dissatisfied customer who is listened to",
    "knowledge": "interactions' worth of learning for the firm",
    "ideas": "product ideas asked for: an innovator who is asked lifts quality by this much, "
             "times (1 - quality), over the people in the market",
    "serve_cost_cut": "share of the cost of serving removed (a cheaper service channel)",
    "serve_quality_cut": "subtracted from experienced quality at every encounter (that channel "
                         "is a little worse)",
    "terminate": "the firm ends the relationship (1 = yes)",
}
FIRM_EFFECTS = ("quality", "training")
# The effects that are sizes of a lever's impact: a lever's capability multiplies them
# (``Actions.effectiveness``, crmsim.firm.Capabilities). The rest are facts of the offer (a
# price, a term, a fee, whether a contact happens) and do not depend on how well it is done.
SCALED_EFFECTS = frozenset({
    "adoption_lift", "return_lift", "experience_bonus", "contact_bonus", "noise_cut",
    "recovery_lift", "churn_cut", "offer_take", "commitment", "customization", "penetration",
    "heard", "knowledge", "ideas"})


@dataclass
class Actions:
    n: int
    person: dict[str, np.ndarray] = field(default_factory=dict)
    firm: dict[str, float] = field(default_factory=dict)
    spend: dict[str, float] = field(default_factory=dict)
    unspent: float = 0.0    # CRM budget no tactic could use this step (not a cost)
    invested: dict[str, float] = field(default_factory=dict)   # money by capability
    # Multiplier of the SCALED_EFFECTS added now: the capability of the lever adding them.
    effectiveness: float = 1.0

    def effect(self, name: str) -> np.ndarray:
        """The array for a per-person effect, created as zeros on first use."""
        if name not in PERSON_EFFECTS:
            raise KeyError(f"unknown person effect {name!r}; known: {', '.join(PERSON_EFFECTS)}")
        if name not in self.person:
            self.person[name] = np.zeros(self.n, dtype=np.float32)
        return self.person[name]

    def add(self, name: str, idx: np.ndarray, amount: float | np.ndarray) -> None:
        """Add ``amount`` to the effect for the people ``idx`` (unique indices, as tactics select),
        times the lever's effectiveness if the effect is a size (``SCALED_EFFECTS``)."""
        if self.effectiveness != 1.0 and name in SCALED_EFFECTS:
            amount = amount * self.effectiveness
        self.effect(name)[idx] += amount

    def adjust_firm(self, name: str, delta: float) -> None:
        if name not in FIRM_EFFECTS:
            raise KeyError(f"unknown firm effect {name!r}; known: {', '.join(FIRM_EFFECTS)}")
        self.firm[name] = self.firm.get(name, 0.0) + delta

    def invest(self, capability: str, amount: float) -> None:
        """Money spent this step to build ``capability`` (paid with ``pay`` too)."""
        if amount > 0:
            self.invested[capability] = self.invested.get(capability, 0.0) + float(amount)

    def pay(self, category: str, amount: float) -> None:
        if amount > 0:
            self.spend[category] = self.spend.get(category, 0.0) + float(amount)

    @property
    def total_spend(self) -> float:
        # fsum: exact, so the total (and the budget left for ads) is the same on every Python.
        return math.fsum(self.spend.values())
