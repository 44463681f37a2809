"""The firm: a Mesa agent with a ledger and a noisy picture of its customers.

Policies never see the true state of the people; they see a ``FirmView`` built here each step:
estimates of value, satisfaction and churn risk blurred by per-person noise that shrinks with
every interaction (IDIC's Identify, information management), plus the firm's own records.
"""

from __future__ import annotations

from dataclasses import dataclass

import mesa
import numpy as np

from .population import Population


def _read_only(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


@dataclass(frozen=True)
class FirmView:
    """What the firm knows at the start of a step (all arrays read-only, length n)."""

    step: int
    status: np.ndarray            # the firm knows who its customers are
    tenure: np.ndarray
    lapsed_at: np.ndarray
    complaints: np.ndarray        # its own records
    late_payments: np.ndarray
    revenue: np.ndarray
    price: np.ndarray
    degree: np.ndarray            # social reach (observable: followers, referrals)
    value_est: np.ndarray         # estimated spend per step
    satisfaction_est: np.ndarray
    risk_est: np.ndarray          # estimated annual churn probability
    needs_est: np.ndarray         # (n, dims) estimated needs
    knowledge_sd: np.ndarray      # noise level behind the estimates
    u: np.ndarray                 # uniforms for random targeting (the policy stream)

    @property
    def n(self) -> int:
        return int(self.status.shape[0])


class Firm(mesa.Agent):
    """Quality, training, reputation, knowledge of each customer, and the ledger."""

    def __init__(
        self,
        model: mesa.Model,
        n: int,
        quality: float,
        training: float,
        reputation: float,
        knowledge_sd: float,
        knowledge_learning: float,
        knowledge_floor: float,
    ) -> None:
        super().__init__(model)
        self.quality = quality
        self.training = training
        self.reputation = reputation
        self.knowledge_sd = np.full(n, knowledge_sd, dtype=np.float32)
        self.learning = knowledge_learning
        self.floor = min(knowledge_floor, knowledge_sd)  # a floor never adds noise

    def observe(self, pop: Population, degree: np.ndarray, step: int,
                rng: np.random.Generator, policy_rng: np.random.Generator) -> FirmView:
        n = pop.n
        sd = self.knowledge_sd
        z = rng.standard_normal((3, n)).astype(np.float32)
        needs_noise = rng.standard_normal(pop.needs.shape).astype(np.float32)
        needs_est = np.clip(pop.needs + sd[:, None] * needs_noise / pop.needs.shape[1], 0.0, None)
        needs_est /= np.maximum(needs_est.sum(axis=1, keepdims=True), 1e-9)
        return FirmView(
            step=step,
            status=_read_only(pop.status),
            tenure=_read_only(pop.tenure),
            lapsed_at=_read_only(pop.lapsed_at),
            complaints=_read_only(pop.complaints),
            late_payments=_read_only(pop.late_payments),
            revenue=_read_only(pop.revenue),
            price=_read_only(pop.price),
            degree=_read_only(degree),
            value_est=pop.value * np.exp(sd * z[0]),
            satisfaction_est=np.clip(pop.satisfaction + sd * z[1], -1.0, 1.0),
            risk_est=np.clip(pop.base_churn * np.exp(sd * z[2]), 0.0, 1.0),
            needs_est=needs_est,
            knowledge_sd=_read_only(sd),
            u=policy_rng.random(n),
        )

    def learn(self, interacted: np.ndarray, strength: np.ndarray | float = 1.0) -> None:
        """Each interaction removes ``learning`` of the remaining noise (``strength`` interactions' worth)."""
        cut = np.where(interacted, (1.0 - self.learning) ** strength, 1.0)
        self.knowledge_sd = np.maximum(self.knowledge_sd * cut, self.floor).astype(np.float32)
