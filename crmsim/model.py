"""CRMModel: one firm, many people, one week at a time.

Read ``step`` aloud and you have the model: the policy acts on what the firm knows; active
customers meet the firm and judge the encounter; bad encounters become complaints; salient ones
are told to others; customers decide whether to stay; prospects decide whether to adopt; the
customers who stayed buy; the firm books it all. Each mechanism is a function in ``behavior/``
applied to everyone at once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from functools import partial

import mesa
import numpy as np
import pandas as pd
from omegaconf import DictConfig

from . import metrics
from .actions import Actions
from .behavior import adoption, churn, experience, spending, wom
from .config import CRMConfig
from .construction import UNSET, model_config
from .firm import Firm
from .network import Network, build_network
from .policies import Policy, make_policy
from .population import ACTIVE, LAPSED, PROSPECT, TERMINATED, Population

# Mesa logs every step at INFO; a model with hundreds of steps should not.
logging.getLogger("mesa").setLevel(logging.WARNING)

# One independent random stream per source of randomness, so that changing what one mechanism
# draws (or a policy) never shifts the draws of another: runs with the same seed are paired.
STREAMS = ("population", "network", "service", "wom", "churn", "adoption", "spending", "firm",
           "policy")

EVENT_TYPES = ("acquisition", "purchase", "complaint", "churn", "win_back", "termination")


def _at(x, idx):
    """``x[idx]`` for a per-person array, ``x`` itself for a number."""
    return x[idx] if np.ndim(x) else x


def _reporter(column: str, model: CRMModel):
    return model.row[column]


class CRMModel(mesa.Model):
    """The CRM world, built from a config or, as Mesa builds models, from keyword parameters.

    ``cfg`` is a composed config (validated here), a typed ``CRMConfig``, a list of Hydra
    overrides or None (the defaults); keyword parameters are config keys, e.g.
    ``CRMModel(**{"policy": "qci", "market.n_people": 500}, rng=3)``; ``rng`` (or ``seed``) is
    the seed, and None draws a fresh one as in Mesa (see ``crmsim.construction``).
    """

    def __init__(self, cfg: CRMConfig | DictConfig | Sequence[str] | None = None,
                 policy: Policy | str | None = None, *, rng: int | None = UNSET,
                 **params) -> None:
        c, policy = model_config(cfg, policy, rng, params)
        super().__init__(rng=c.seed)
        self.cfg = c
        self.dt = c.sim.period_days / 365.0
        seeds = np.random.SeedSequence(c.seed).spawn(len(STREAMS))
        self.streams = {name: np.random.default_rng(s) for name, s in zip(STREAMS, seeds, strict=True)}

        self.population = Population.sample(c.market, self.streams["population"])
        self.network: Network = build_network(
            c.network.kind, c.market.n_people, c.network.mean_degree, self.streams["network"],
            rewire_prob=c.network.rewire_prob, path=c.network.path,
            weak_degree=c.network.weak_degree,
        )
        self.firm = Firm(
            self, c.market.n_people, quality=c.firm.quality, training=c.firm.training,
            reputation=c.firm.reputation, knowledge_sd=c.firm.knowledge.noise_sd,
            knowledge_learning=c.firm.knowledge.learning, knowledge_floor=c.firm.knowledge.floor,
            rng=self.streams["firm"], needs_dims=c.market.needs.dims,
        )
        self.policy = policy if policy is not None else make_policy(c.policy)
        svc = c.firm.service
        self.expected_service_cost = svc.encounter_prob * svc.cost_per_encounter
        self._settle_initial_customers()
        self.lapse_decay = churn.lapse_signal_decay(c.sim.period_days, c.market.churn.contagion_days)

        self.events: list[pd.DataFrame] = []
        self.row: dict[str, float] = {}
        self.datacollector = mesa.DataCollector(
            model_reporters={col: partial(_reporter, col) for col in metrics.TIMESERIES}
        )
        self._record_initial_state()

    # -- the step ---------------------------------------------------------------------------
    def step(self) -> None:
        c, pop, firm, s = self.cfg, self.population, self.firm, self.streams
        n, t = pop.n, self.steps
        row = dict.fromkeys(metrics.TIMESERIES, 0.0)
        row["step"] = t

        # 1. The policy acts on what the firm knows.
        view = firm.observe(pop, self.network.degree, t, s["policy"], c.firm.margin,
                            self.expected_service_cost)
        actions = self.policy.decide(view, c.firm.crm_budget, t)
        terminated = self.apply_actions(actions, row)

        # 2. Service encounters. Every stream draws for all n people, every step.
        active = pop.status == ACTIVE
        u_meet, u_rude, u_complain, u_recover = s["service"].random((4, n))
        z = s["service"].standard_normal(n)
        svc = c.firm.service
        met = active & (u_meet < svc.encounter_prob + self._effect(actions, "encounter_lift"))
        rude_p = experience.rude_probability(svc.rude_prob, firm.training, svc.training_effect)
        noise_sd = svc.noise_sd * (1.0 - np.clip(self._effect(actions, "noise_cut"), 0.0, 1.0))
        experienced, rude = experience.encounter(
            met, firm.quality, pop.fit, self._effect(actions, "experience_bonus"), noise_sd,
            rude_p, svc.rude_shock, c.market.experience.fit_weight, z, u_rude,
        )
        ex = c.market.experience
        pop.satisfaction, pop.expectation, signal = experience.satisfaction_update(
            met, experienced, pop.satisfaction, pop.expectation, c.market.competitor_quality,
            ex.disconfirmation_weight, ex.gain, ex.learning_rate, ex.expectation_rate,
        )
        firm.learn(met)

        # 3. Complaints and recovery.
        complained = experience.complaints(signal, ex.salience, pop.complaint_propensity, u_complain)
        recovered = experience.recovery(
            complained, svc.recovery_prob + self._effect(actions, "recovery_lift"), u_recover
        )
        pop.satisfaction = np.where(
            recovered, np.minimum(pop.satisfaction + svc.recovery_boost, 1.0), pop.satisfaction
        ).astype(np.float32)
        pop.complaints += complained
        # A bad experience put right is not told as a bad story.
        signal = np.where(recovered, 0.0, signal)

        # 4. Word of mouth.
        w = c.wom
        u_tell, u_viral, u_pos, u_neg = s["wom"].random((4, n))
        pos, neg = wom.tellers(signal, ex.salience, w.recommend_prob, w.complain_to_others_prob,
                               u_tell)
        # The trapped and the terminated tell their story too (seed 001: bad reputation).
        neg = neg | pop.grievance
        pop.grievance[:] = False
        n_viral = wom.viral(neg, w.viral_prob, u_viral)
        lam_pos = wom.expected_heard(self.network, pos, w.tell_positive, w.strong_rate, w.weak_rate)
        lam_neg = wom.expected_heard(self.network, neg, w.tell_negative, w.strong_rate, w.weak_rate)
        lam_neg += n_viral * w.viral_reach / n
        heard_pos = wom.stochastic_round(lam_pos, u_pos)
        heard_neg = wom.stochastic_round(lam_neg, u_neg)
        pop.sentiment = wom.sentiment_update(pop.sentiment, heard_pos, heard_neg,
                                             w.message_weight, w.sentiment_memory)
        firm.reputation = float(np.clip(
            c.firm.reputation_memory * firm.reputation
            + (1.0 - c.firm.reputation_memory) * pop.sentiment.mean(dtype=np.float64)
            - w.viral_reputation_hit * n_viral, -1.0, 1.0))

        # 5. Churn, with contagion from recently lapsed neighbours; lapsed customers may return.
        ch = c.market.churn
        u_churn = s["churn"].random(n)
        active = pop.status == ACTIVE
        exposure = self._contagion_exposure() if ch.contagion > 0 else 0.0
        felt_price = self._felt_price(actions)
        args = (pop.satisfaction, pop.commitment, pop.sentiment)
        effects = (ch.satisfaction_effect, ch.commitment_effect, ch.sentiment_effect,
                   ch.switching_cost_effect, ch.price_effect, ch.contagion)
        m = churn.hazard_multiplier(*args, pop.switching_cost, felt_price, pop.price_sensitivity,
                                    exposure, *effects)
        eligible = active & ch.enabled
        left = churn.decide(eligible, churn.leave_probability(pop.base_churn, m, self.dt), u_churn)
        trapped = np.zeros(n, dtype=bool)
        locked = eligible & (pop.switching_cost > 0)
        if locked.any():
            # Who would have left without the lock, and could not (the same draw decides).
            m_free = churn.hazard_multiplier(*args, 0.0, felt_price, pop.price_sensitivity,
                                             exposure, *effects)
            free = churn.decide(locked, churn.leave_probability(pop.base_churn, m_free, self.dt),
                                u_churn)
            trapped = free & ~left
            pop.grievance |= trapped
            pop.sentiment = np.where(trapped, np.maximum(pop.sentiment - ch.trap_resentment, -1.0),
                                     pop.sentiment).astype(np.float32)
        exit_fees = float(pop.exit_fee[left].sum())
        pop.exit_fee[left] = 0.0
        pop.switching_cost[left] = 0.0
        lapsed = pop.status == LAPSED
        # Only lapsed customers can return and only prospects adopt: their probabilities are
        # computed for them alone (the same formulas, element for element).
        back = np.flatnonzero(lapsed)
        back_p = churn.return_probability(
            ch.winback_rate + _at(self._effect(actions, "return_lift"), back),
            np.exp(ch.sentiment_effect * pop.sentiment[back]), self.dt)

        # 6. Adoption: Bass on the network, moved by sentiment and reputation.
        a = c.adoption
        u_adopt = s["adoption"].random(n)
        prospect = pop.status == PROSPECT
        # People imitate customers who are content with the firm, not the ones who feel trapped
        # or let down (seed 001: negative retention spreads a bad reputation).
        share = self.network.neighbour_share(active & (pop.satisfaction >= 0))
        cand = np.flatnonzero(prospect)
        p_adopt = adoption.bass_step_probability(
            share[cand], a.innovation + _at(self._effect(actions, "adoption_lift"), cand),
            a.imitation, self.dt)
        p_adopt = adoption.scale_probability(
            p_adopt, np.exp(a.sentiment_effect * pop.sentiment[cand]
                            + a.reputation_effect * firm.reputation))
        adopted = np.zeros(n, dtype=bool)
        adopted[cand] = u_adopt[cand] < p_adopt
        returned = np.zeros(n, dtype=bool)
        returned[back] = u_adopt[back] < back_p

        row["at_risk"] = int(np.count_nonzero(active))
        self._move(left, LAPSED)
        pop.lapsed_at[left] = t
        pop.lapse_signal *= self.lapse_decay
        pop.lapse_signal[left] = 1.0
        self._join(adopted | returned)
        pop.ever_customer |= adopted

        # 7. Spending and payment by those still active after churn.
        active = pop.status == ACTIVE
        np.add(pop.tenure, active, out=pop.tenure)   # a boolean index is ~50x slower
        pop.commitment = experience.commitment_update(
            active, pop.commitment, pop.satisfaction, ex.commitment_rate, self.dt)
        u_pay = s["spending"].random(n)
        amount = spending.spend(active, pop.value, pop.price, pop.satisfaction,
                                c.market.spend.satisfaction_effect, pop.penetration)
        late, default = spending.payment(active, pop.late_pay_prob, c.market.traits.default_prob,
                                         u_pay)
        pop.late_payments += late
        pop.revenue += amount
        disc = metrics.discount_factor(t, c.sim.discount_rate, self.dt)
        pop.margin_discounted += amount * c.firm.margin * disc

        # 8. Accounting and data.
        sales = float(amount.sum())
        row.update(
            acquired=int(np.count_nonzero(adopted)),
            churned=int(np.count_nonzero(left)),
            won_back=int(np.count_nonzero(returned)),
            terminated=int(np.count_nonzero(terminated)),
            encounters=int(np.count_nonzero(met)),
            rude_incidents=int(np.count_nonzero(rude)),
            complaints=int(np.count_nonzero(complained)),
            recovered=int(np.count_nonzero(recovered)),
            late_payments=int(np.count_nonzero(late)),
            defaults=int(np.count_nonzero(default)),
            sales=sales,
            exit_fees=exit_fees,
            revenue=sales + exit_fees,
            trapped=int(np.count_nonzero(trapped)),
            cost_goods=sales * (1.0 - c.firm.margin),
            cost_service=float((svc.cost_per_encounter
                                * (1.0 - svc.satisfied_cost_cut
                                   * np.maximum(np.compress(met, pop.satisfaction), 0.0))).sum()),
            cost_complaints=svc.complaint_cost * int(np.count_nonzero(complained)),
            cost_bad_debt=float(amount[default].sum()),
            cost_fixed=c.firm.fixed_cost,
            wom_positive=int(heard_pos.sum()),
            wom_negative=int(heard_neg.sum()),
            viral_incidents=n_viral,
            discount_factor=disc,
        )
        self._finish_row(row)
        if c.sim.record_events:
            self._record_events(t, adopted, returned, left, terminated, complained, amount)
        self._stop_at_horizon()

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _effect(actions: Actions, name: str) -> np.ndarray | float:
        return actions.person.get(name, 0.0)

    def apply_actions(self, actions: Actions, row: dict) -> np.ndarray:
        """Apply the lasting effects and terminations; return who was terminated."""
        pop, firm = self.population, self.firm
        for name, delta in actions.firm.items():
            setattr(firm, name, float(np.clip(getattr(firm, name) + delta, 0.0, 1.0)))
        p = actions.person
        if "commitment" in p:
            pop.commitment = np.clip(pop.commitment + p["commitment"], 0.0, 1.0)
        if "switching_cost" in p:
            pop.switching_cost = np.clip(pop.switching_cost + p["switching_cost"], 0.0, 1.0)
        if "exit_fee" in p:
            pop.exit_fee += p["exit_fee"]
        if "deal_seeking" in p:
            pop.deal_seeker += np.clip(p["deal_seeking"], 0.0, 1.0) * (1.0 - pop.deal_seeker)
        if "price" in p:
            pop.price = np.maximum(pop.price * (1.0 + p["price"]), 0.0).astype(np.float32)
        if "customization" in p:
            g = np.clip(p["customization"], -1.0, 1.0)
            c = pop.customization
            pop.customization = (c + np.where(g >= 0, g * (1.0 - c), g * (1.0 + c))).astype(np.float32)
        if "penetration" in p:
            # Only satisfied customers buy more (seed 002).
            pop.penetration += p["penetration"] * np.maximum(pop.satisfaction, 0.0)
        if "heard" in p:
            sat = pop.satisfaction
            pop.satisfaction = np.where(sat < 0, np.minimum(sat + p["heard"], 0.0), sat).astype(np.float32)
        if "knowledge" in p:
            firm.learn(p["knowledge"] > 0, p["knowledge"])
        terminated = np.zeros(pop.n, dtype=bool)
        if "terminate" in p:
            terminated = (p["terminate"] > 0) & (pop.status == ACTIVE)
            self._move(terminated, TERMINATED)
            pop.grievance |= terminated
            pop.sentiment[terminated] = -1.0
        for cat, amount in actions.spend.items():
            row[f"cost_{cat}"] += amount
        return terminated

    def _felt_price(self, actions: Actions) -> np.ndarray:
        """The price as the customer feels it this step: discounted by a promotion; without
        one, a deal-seeker feels the full price as dearer."""
        pop = self.population
        discount = np.clip(self._effect(actions, "discount"), 0.0, 1.0)
        premium = self.cfg.market.traits.deal_seeker_premium * pop.deal_seeker
        return pop.price * np.where(discount > 0, 1.0 - discount, 1.0 + premium)

    def _settle_initial_customers(self) -> None:
        """Customers at step 0 have met the firm before: used to its typical encounter, they
        feel what it is worth against the competitor."""
        c, pop = self.cfg, self.population
        active = pop.status == ACTIVE
        ex = c.market.experience
        typical = c.firm.quality + ex.fit_weight * (pop.fit - 0.5)
        pop.expectation = np.where(active, typical, pop.expectation).astype(np.float32)
        pop.satisfaction, _, _ = experience.satisfaction_update(
            active, typical, pop.satisfaction, pop.expectation, c.market.competitor_quality,
            ex.disconfirmation_weight, ex.gain, learning_rate=1.0, expectation_rate=0.0,
        )

    def _move(self, mask: np.ndarray, status: int) -> None:
        self.population.status[mask] = status
        self.population.tenure[mask] = 0

    def _join(self, mask: np.ndarray) -> None:
        """New and returning customers start neutral, expecting the market's usual quality."""
        pop = self.population
        pop.status[mask] = ACTIVE
        pop.tenure[mask] = 0
        pop.satisfaction[mask] = 0.0
        pop.commitment[mask] = 0.0
        pop.expectation[mask] = self.cfg.market.competitor_quality

    def _contagion_exposure(self) -> np.ndarray:
        net, sig = self.network, self.population.lapse_signal
        if net.complete:
            # Well-mixed: each person is in touch with mean_degree others drawn at random.
            return self.cfg.network.mean_degree * (sig.sum() - sig) / max(net.n - 1, 1)
        exposure = net.neighbour_sum(sig, "strong")
        if net.weak is not None:
            exposure += net.neighbour_sum(sig, "weak")
        return exposure

    def _finish_row(self, row: dict) -> None:
        pop, firm = self.population, self.firm
        counts = pop.counts()
        active = pop.status == ACTIVE
        row.update(
            n_prospect=int(counts[PROSPECT]), n_active=int(counts[ACTIVE]),
            n_lapsed=int(counts[LAPSED]), n_terminated=int(counts[TERMINATED]),
            satisfaction_mean=metrics.mean_over(pop.satisfaction, active),
            sentiment_mean=float(pop.sentiment.mean(dtype=np.float64)),
            commitment_mean=metrics.mean_over(pop.commitment, active),
            nps=metrics.nps(pop.satisfaction, active),
            reputation=firm.reputation, quality=firm.quality,
        )
        # fsum: exact sums of money, identical on every Python version.
        row["crm_spend"] = math.fsum(row[f"cost_{k}"] for k in metrics.CRM_CATEGORIES)
        row["cost_total"] = math.fsum([row["crm_spend"], *(row[k] for k in metrics.OPERATING_COSTS)])
        row["profit"] = row["revenue"] - row["cost_total"]
        row["profit_discounted"] = row["profit"] * row["discount_factor"]
        self.row = row
        self.datacollector.collect(self)

    def _record_initial_state(self) -> None:
        row = dict.fromkeys(metrics.TIMESERIES, 0.0)
        row["step"] = 0
        row["discount_factor"] = 1.0
        self._finish_row(row)
        if self.cfg.sim.record_events:
            initial = self.population.status == ACTIVE
            none = np.zeros_like(initial)
            self._record_events(0, initial, none, none, none, none, np.zeros(self.population.n))

    def _record_events(self, t, adopted, returned, left, terminated, complained, amount) -> None:
        date = pd.Timestamp("2026-01-01") + pd.Timedelta(days=t * self.cfg.sim.period_days)
        parts = []
        for kind, mask, amt in (
            ("acquisition", adopted, None), ("win_back", returned, None), ("churn", left, None),
            ("termination", terminated, None), ("complaint", complained, None),
            ("purchase", amount > 0, amount),
        ):
            ids = np.flatnonzero(mask)
            if ids.size:
                parts.append(pd.DataFrame({
                    "customer_id": ids, "step": t, "date": date,
                    "event": pd.Categorical([kind] * ids.size, categories=EVENT_TYPES),
                    "amount": amt[ids] if amt is not None else 0.0,
                }))
        if parts:
            self.events.append(pd.concat(parts, ignore_index=True))

    # -- outputs ----------------------------------------------------------------------------
    def timeseries(self) -> pd.DataFrame:
        df = self.datacollector.get_model_vars_dataframe().reset_index(drop=True)
        df["step"] = df["step"].astype(int)
        return df

    def events_table(self) -> pd.DataFrame:
        if not self.events:
            return pd.DataFrame({"customer_id": pd.Series(dtype=np.int64),
                                 "step": pd.Series(dtype=np.int64),
                                 "date": pd.Series(dtype="datetime64[ns]"),
                                 "event": pd.Categorical([], categories=EVENT_TYPES),
                                 "amount": pd.Series(dtype=np.float64)})
        return pd.concat(self.events, ignore_index=True)

    def _stop_at_horizon(self) -> None:
        """Mesa's stop signal (``mesa.batch_run``, SolaraViz's play): the run is ``sim.steps`` long."""
        if self.steps >= self.cfg.sim.steps:
            self.running = False
