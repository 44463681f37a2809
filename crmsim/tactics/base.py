"""The shape every tactic has, so policies can swap one for another.

A tactic is a lever with a target set, a cost and an effect:
``select(view, budget, priority) -> indices`` picks whom it reaches from what the firm knows
(the highest ``priority`` first, at random when the policy gives none; a priority of -inf
leaves a person out), ``cost(indices)``
prices that, and ``apply(actions, indices, view)`` writes the effect into the step's
``Actions``. ``run`` does the three and books the spend under the tactic's category.

Time has units here as everywhere (DESIGN section 3). A tactic is billed one of two ways:

- ``billing = "contact"``: a contact (an e-mail, a call, an offer, a customization) costs
  ``cost_per_contact`` and has its effect once, whatever the step length; ``cadence_days`` is
  the least time between two contacts of the same person (0: no limit; a cadence shorter than
  the step means at most once a step);
- ``billing = "year"``: coverage (a membership, a media presence, a service level) costs
  ``cost_per_year`` per person covered, so covering someone for one step costs
  ``cost_per_year * view.dt``; its effect holds while they are covered, and anything that
  accumulates is written per year.

**Control groups** (``crmsim.levers``). A tactic that reaches people one by one
(``control_group = True``, the default) keeps a standing control group: ``run`` draws up the
target list as if the money reached ``1 / (1 - holdout_share)`` times as many people, leaves out
those in the lever's control group at no cost and with no effect, and records who joined the
treated and the control arm. A tactic that overrides ``run`` without people to hold out (media,
firm-wide investment) sets ``control_group = False``. ``holdout_share = 0`` (no control group)
runs exactly as without this machinery.

Each tactic declares its parameters' constraints next to the class (``_parameter_constraints``,
checked by ``crmsim.constraints``); the values come from
``configs/policy/tactics/catalogue.yaml`` (one place, with their sources). Defining a subclass
with a ``name`` registers it: the catalogue is discovered, not listed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..actions import Actions
from ..constraints import Constraint, Flag, Interval, check_params
from ..firm import FirmView
from ..levers import ControlGroup
from ..population import ACTIVE
from ..units import DAYS_PER_YEAR

POSITIVE = Interval(0.0, lo_open=True)
NONNEGATIVE = Interval(0.0)
SHARE = Interval(0.0, 1.0)
CADENCE = Interval(0.0, 3650.0)
# Every tactic's entry also takes these: whether a policy uses it and its share of the budget.
COMMON: dict[str, Constraint] = {"enabled": Flag(), "share": SHARE}


class Tactic:
    name: ClassVar[str]
    category: ClassVar[str]            # ledger category of its spend
    billing: ClassVar[str] = "contact"  # "contact" (cost per contact) or "year" (per person-year)
    audience: ClassVar[int] = ACTIVE   # the status of the people it can reach
    # The firm capability its effect sizes rely on (crmsim.firm.CAPABILITIES; None: none).
    capability: ClassVar[str | None] = None
    effects: ClassVar[dict[str, str]] = {}   # person effect -> the parameter that sizes it
    control_group: ClassVar[bool] = True      # reaches people one by one: it can hold some out
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "cost_per_contact": POSITIVE, "cadence_days": CADENCE}
    registry: ClassVar[dict[str, type[Tactic]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            Tactic.registry[cls.name] = cls

    def __init__(self, **params: Any) -> None:
        for key in self._parameter_constraints:
            setattr(self, key, float(params[key]))
        self._last_contact: np.ndarray | None = None
        self.control: ControlGroup | None = None   # set by Policy.setup_controls

    @classmethod
    def check(cls, prefix: str, params: dict[str, Any]) -> None:
        """Stop on unknown, missing or out-of-range parameters, naming the config key."""
        check_params(prefix, params, {**COMMON, **cls._parameter_constraints},
                     f"'{cls.name}'", optional=tuple(COMMON))

    # -- the interface ----------------------------------------------------------------------
    def candidates(self, view: FirmView) -> np.ndarray:
        eligible = view.status == self.audience
        if getattr(self, "cadence_days", 0.0) > 0 and self._last_contact is not None:
            # Due ``cadence_days`` after the last contact, on average exactly: in the step that
            # ends then, or in the one before with the chance of that step's part past the due
            # date (30 days in weekly steps: after 28 days with chance 5/7, else after 35).
            step_days = view.dt * DAYS_PER_YEAR
            eligible &= view.day - self._last_contact + view.u_due * step_days >= self.cadence_days
        return eligible

    def unit_cost(self, view: FirmView) -> float:
        """What reaching one person costs this step."""
        if self.billing == "year":
            return self.cost_per_year * view.dt
        return self.cost_per_contact

    def select(self, view: FirmView, budget: float, priority: np.ndarray | None = None) -> np.ndarray:
        candidates = self.candidates(view)
        # Compared as floats first: budget // cost can exceed any int (firm.crm_budget=1e308).
        k = int(min(budget // self.unit_cost(view), candidates.size)) if budget > 0 else 0
        order = view.u if priority is None else -priority
        return take_first(candidates, order, k)

    def cost(self, idx: np.ndarray, view: FirmView) -> float:
        return idx.size * self.unit_cost(view)

    def unit_costs(self, idx: np.ndarray, view: FirmView) -> np.ndarray:
        """What reaching each of ``idx`` costs this step (``cost`` is their sum)."""
        return np.full(idx.size, self.unit_cost(view))

    def apply(self, actions: Actions, idx: np.ndarray, view: FirmView) -> None:
        for effect, param in self.effects.items():
            actions.add(effect, idx, getattr(self, param))

    def run(self, view: FirmView, budget: float, actions: Actions,
            priority: np.ndarray | None = None) -> np.ndarray:
        if self.control is not None and self.control.share > 0:
            idx = self._select_with_control(view, budget, priority)
        else:
            idx = self.select(view, budget, priority)
        actions.pay(self.category, self.cost(idx, view))
        actions.effectiveness = view.effectiveness(self.capability)
        self.apply(actions, idx, view)
        actions.effectiveness = 1.0
        self._remember(idx, view)
        return idx

    def _select_with_control(self, view: FirmView, budget: float,
                             priority: np.ndarray | None) -> np.ndarray:
        """Whom to treat: the target list for ``budget / (1 - share)``, less the people in the
        control group (recorded as held out), cut to what ``budget`` pays for (the last in a
        random order go first; they join neither arm)."""
        share = self.control.share
        listed = self.select(view, budget / (1.0 - share) if share < 1 else np.inf, priority)
        treat, held = self.control.split(listed, view.n)
        if self.cost(treat, view) > budget:
            treat = treat[np.argsort(view.u[treat], kind="stable")]
            paid = np.cumsum(self.unit_costs(treat, view))
            treat = treat[:np.searchsorted(paid, budget, side="right")]
        self.control.join(treat, held, view)
        return treat

    def _remember(self, idx: np.ndarray, view: FirmView) -> None:
        """The firm's record of whom it contacted when (for the cadence)."""
        if getattr(self, "cadence_days", 0.0) > 0 and idx.size:
            if self._last_contact is None:
                self._last_contact = np.full(view.n, -np.inf)
            self._last_contact[idx] = view.day

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k):g}" for k in self._parameter_constraints)
        return f"{type(self).__name__}({args})"


class Coverage(Tactic):
    """A tactic billed per person-year of coverage."""

    billing = "year"
    _parameter_constraints = {"cost_per_year": POSITIVE}


def take_affordable(candidates: np.ndarray, order_key: np.ndarray, unit_cost: np.ndarray,
                    budget: float) -> np.ndarray:
    """Candidates in ``order_key`` order (smallest first, ties by index) for as long as the
    budget lasts, each costing its own ``unit_cost``; a key of +inf (a priority of -inf)
    excludes the candidate, and so does a unit cost above the whole budget (the firm passes
    over whom it cannot afford at all rather than stopping there)."""
    idx = _ranked(candidates, order_key)
    if idx.size == 0 or budget <= 0:
        return idx[:0]
    idx = idx[unit_cost[idx] <= budget]
    if idx.size == 0:
        return idx
    # Only the cheapest-case number of people can be afforded: sort just the candidates whose
    # key is within that many of the smallest (all ties included, so the result is the prefix
    # of the full stable sort), not all of them.
    cheapest = float(unit_cost[idx].min())
    if cheapest > 0 and budget / cheapest < idx.size - 1:
        k = int(budget / cheapest) + 1
        keys = order_key[idx]
        threshold = np.partition(keys, k - 1)[k - 1]
        idx = idx[keys <= threshold]
    idx = idx[np.argsort(order_key[idx], kind="stable")]
    return idx[:np.searchsorted(np.cumsum(unit_cost[idx]), budget, side="right")]


def take_first(candidates: np.ndarray, order_key: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` candidates with the smallest ``order_key`` (all of them if fewer); a key of
    +inf (a priority of -inf) excludes the candidate."""
    idx = _ranked(candidates, order_key)
    if k <= 0:
        return idx[:0]
    if k >= idx.size:
        return idx
    return idx[np.argpartition(order_key[idx], k - 1)[:k]]


def _ranked(candidates: np.ndarray, order_key: np.ndarray) -> np.ndarray:
    """The candidates' indices, without those a policy excluded (order key +inf)."""
    idx = np.flatnonzero(candidates)
    if idx.size and np.isposinf(order_key[idx]).any():
        idx = idx[~np.isposinf(order_key[idx])]
    return idx
