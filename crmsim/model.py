"""CRMModel: one firm, many people, one step (a week by default) at a time.

Read ``step`` aloud and you have the model: the policy acts on what the firm knows; active
customers meet the firm and judge the encounter; bad encounters become complaints; salient ones
are told to others; customers decide whether to stay; prospects decide whether to adopt (and
lapsed customers whether to return); the decisions take effect; the customers who stayed buy;
the firm books it all. Each phase is one method below, writing its own counters into the step's
row; each mechanism is a function in ``behavior/`` applied to everyone at once.

In an open market (``market.growth`` > 0) the people who will enter during the run are
simulated from the start, outside the market (``population.py`` states the invariant); at the
end of each step those due enter as prospects (``_enter``). Only word of mouth reaches them
before; the means of sentiment and reputation are over the people in the market.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import mesa
import numpy as np
import pandas as pd
from omegaconf import DictConfig

from . import metrics, units
from .actions import Actions
from .behavior import adoption, churn, experience, purchase, spending, wom
from .config import CRMConfig
from .construction import UNSET, model_config
from .firm import CAPABILITIES, Capabilities, Firm
from .network import Network, build_network
from .parallel import Ahead, Soon, Workers
from .policies import Policy, make_policy
from .population import ACTIVE, LAPSED, OUTSIDE, PROSPECT, TERMINATED, Population
from .units import fade_per_step, step_years

# Mesa logs every step at INFO; a model with hundreds of steps should not.
logging.getLogger("mesa").setLevel(logging.WARNING)

# One independent random stream per source of randomness, so that changing what one mechanism
# draws (or a policy) never shifts the draws of another: runs with the same seed are paired.
# Streams may only be APPENDED to this tuple: each is spawned from the seed by its position, so
# inserting or reordering one changes every later stream and breaks reproducibility of saved runs.
STREAMS = ("population", "network", "service", "wom", "churn", "adoption", "spending", "firm",
           "policy", "purchase", "offers", "holdout")

EVENT_TYPES = ("acquisition", "purchase", "complaint", "churn", "win_back", "termination")
DATE_ORIGIN = pd.Timestamp("2026-01-01")   # the event log's date of step 0 (docs/events.md)


def _at(x, idx):
    """``x[idx]`` for a per-person array, ``x`` itself for a number."""
    return x[idx] if isinstance(x, np.ndarray) and x.ndim else x


def _share(x):
    """``x`` clipped to 0..1: an effect that is a share (a cut), per person or one number."""
    return np.clip(x, 0.0, 1.0) if isinstance(x, np.ndarray) else min(max(x, 0.0), 1.0)


def _settle(buyers, late_prob, u, amount, late_payments, revenue, margin_discounted, *,
            default_prob, margin, discount_factor):
    """Who pays late and who never (``spending.payment``), added to each person's books in
    place with what they bought. Element-wise (``Workers.blockwise``)."""
    late, default = spending.payment(buyers, late_prob, default_prob, u)
    late_payments += late
    revenue += amount
    margin_discounted += amount * margin * discount_factor
    return late, default


def _price_paid(price, deal_seeker, discount):
    """The price a person pays: a constant deal-seeker always finds a deal (a coupon, a price
    match) and pays ``discount`` (``deal_seeker_discount``) less (seed 001: they cost margin).
    Element-wise."""
    return price * (1.0 - discount * deal_seeker)


def _felt_price(price, discount, deal_seeker, premium):
    """The price as the customer feels it: discounted by a promotion; without one, a
    deal-seeker feels the full price as dearer by ``premium``. Element-wise."""
    return price * np.where(discount > 0, 1.0 - discount, 1.0 + premium * deal_seeker)


def _uniforms(shape: tuple, rng: np.random.Generator, spare: np.ndarray | None) -> np.ndarray:
    """A step's uniforms of one stream, in ``spare`` (the stream's block before, ``Ahead``)."""
    return rng.random(shape, out=spare)


class ServiceDraws(NamedTuple):
    """A step's draws of the service stream: for everyone, the uniforms that decide how many
    times each person meets the firm (``meet``) and the first encounter's draws; then, for
    encounter j >= 2, the draws for everyone with at least j - 1 Poisson encounters (who that
    is depends on ``meet`` alone, not on the policy, so every run with this seed draws the
    same)."""

    meet: np.ndarray
    rude: np.ndarray
    complain: np.ndarray
    recover: np.ndarray
    z: np.ndarray
    further: list            # (drawn, z, uniforms (3, drawn.size)) for j = 2, 3, ...
    first: np.ndarray        # meet, rude, complain and recover: the rows of one (4, n) array


def _service_draws(n: int, at_least: tuple, rng: np.random.Generator,
                   spare: ServiceDraws | None) -> ServiceDraws:
    """A step's draws of the service stream, the draws for everyone in ``spare``'s arrays (the
    stream's block before, ``Ahead``); the further encounters' vary in size and are new."""
    first = rng.random((4, n), out=spare.first if spare is not None else None)
    u_meet, u_rude, u_complain, u_recover = first
    z = rng.standard_normal(n, out=spare.z if spare is not None else None)
    further = []
    drawn = np.flatnonzero(u_meet < at_least[0])
    for j in range(1, len(at_least)):
        if drawn.size == 0:
            break
        z_k = rng.standard_normal(drawn.size)
        further.append((drawn, z_k, rng.random((3, drawn.size))))
        drawn = drawn[u_meet[drawn] < at_least[j]]
    return ServiceDraws(u_meet, u_rude, u_complain, u_recover, z, further, first)


class PerStep(NamedTuple):
    """What one step needs of the config's rates per year and durations in days."""

    crm_budget: float            # CRM money to spend this step
    fixed_cost: float
    encounter_at_least: tuple    # P(at least k encounters in the step), k = 1, 2, ...
    late_pay_prob: np.ndarray    # per person: chance of a late payment this step ...
    late_pay_prob_half: np.ndarray  # ... and in half a step (for who joined or left in it)
    sentiment_fade: float        # factor by which sentiment fades toward neutral
    reputation_fade: float       # weight of the old reputation against this step's sentiment
    lapse_fade: float            # factor by which a neighbour's lapse fades (contagion) ...
    lapse_mean: float            # ... and its mean over the step, relative to its start
    destructive_story: float     # chance that a destructive customer tells a bad story this step
    service_cost_per_year: float  # expected service cost of a customer (the firm's planning figure)
    in_market: np.ndarray        # people in the market at the end of each step (market.growth)


class Stories(NamedTuple):
    good: np.ndarray         # per person: salient good encounters this step
    bad: np.ndarray          # ... salient bad ones that were not put right
    encounters: np.ndarray   # ... encounters this step
    complaints_at: list      # who complained, one index array per encounter round


class Leaving(NamedTuple):
    left: np.ndarray         # customers who leave this step
    trapped: np.ndarray      # who wanted to leave and was held by a switching cost


class Joining(NamedTuple):
    adopted: np.ndarray      # prospects who become customers
    returned: np.ndarray     # lapsed customers who come back


def _reporter(column: str, model: CRMModel):
    return model.row[column]


class RowCollector(mesa.DataCollector):
    """Mesa's DataCollector with one model reporter per column of the step's row
    (``metrics.TIMESERIES``: ``model.row[column]``).

    Every value of the row is a number, which nothing can change once stored, so ``collect``
    stores it as it is: Mesa's own ``collect`` deep-copies each reporter's value, ~55 copies a
    step (~25 us, 2% of a 1,000-person step; 2 us without). The table
    (``get_model_vars_dataframe``) is the same (``tests/test_invariants.py``).
    """

    def __init__(self, columns: Sequence[str]) -> None:
        super().__init__(model_reporters={col: partial(_reporter, col) for col in columns})

    def collect(self, model: CRMModel) -> None:
        row = model.row
        for column, values in self.model_vars.items():
            values.append(row[column])
        if hasattr(self, "_collection_steps"):   # Mesa >= 3.4 records when each row was taken
            self._collection_steps.append(model.time)

    def get_model_vars_dataframe(self) -> pd.DataFrame:
        """Mesa's table, each column made by numpy (which types a list of numbers as pandas
        does: whole numbers int64, else float64) rather than by pandas from the list: the same
        table, ~2x faster."""
        return pd.DataFrame({column: np.asarray(values) for column, values in self.model_vars.items()})


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
        self.dt = step_years(c.sim.period_days)
        seeds = np.random.SeedSequence(c.seed).spawn(len(STREAMS))
        self.streams = {name: np.random.default_rng(s) for name, s in zip(STREAMS, seeds, strict=True)}

        # An open market allocates its entrants up front, outside the market (population.py).
        self.population = Population.sample(c.market, self.streams["population"],
                                            c.sim.steps * self.dt)
        self.in_market = c.market.n_people   # the people in the market are the first ones
        self.network: Network = build_network(
            c.network.kind, self.population.n, c.network.mean_degree, self.streams["network"],
            rewire_prob=c.network.rewire_prob, path=c.network.path,
            weak_degree=c.network.weak_degree,
        )
        self.firm = Firm(
            self, self.population.n, quality=c.firm.quality, training=c.firm.training,
            reputation=c.firm.reputation, knowledge_sd=c.firm.knowledge.noise_sd,
            knowledge_learning=c.firm.knowledge.learning, knowledge_floor=c.firm.knowledge.floor,
            rng=self.streams["firm"], needs_dims=c.market.needs.dims,
            capabilities=Capabilities(
                {k: getattr(c.firm.capabilities, k) for k in CAPABILITIES},
                c.firm.capabilities.reference, c.firm.capabilities.half_life_days,
                c.firm.capabilities.gain_per_money),
        )
        self.noncontractual = c.market.purchase.kind == "noncontractual"
        if self.noncontractual:
            self._init_purchasing()
        self.policy = policy if policy is not None else make_policy(c.policy)
        # Control groups from their own stream (crmsim/levers.py); each lever's draw is keyed
        # by its name under it, so no other stream and no other lever's draw moves.
        self.policy.setup_controls(c.policy.holdout_share,
                                   self.streams["holdout"].bit_generator.seed_seq,
                                   c.sim.discount_rate)
        self.per_step = self._per_step_quantities()
        self._settle_initial_customers()
        self._start_draws()

        self.events: list[pd.DataFrame] = []
        self.row: dict[str, float] = {}
        self.datacollector = RowCollector(metrics.TIMESERIES)
        self._record_initial_state()

    def __getstate__(self) -> dict:
        """What a copy takes (``copy.deepcopy``; the tactics' generated classes do not pickle).
        A worker may still be drawing a stream's next step: it finishes first, so that the
        copy's generators stand where the draws it carries leave them."""
        for ahead in self.__dict__.get("draws", {}).values():
            ahead.settle()
        return self.__dict__

    # -- the step ---------------------------------------------------------------------------
    def step(self) -> None:
        """One step: the phases of DESIGN section 3, in order."""
        row = self._new_row()
        exposure = self._contagion_ahead()
        actions, terminated = self._policy_acts(row)
        self._respond(actions, terminated, exposure, row)

    def _respond(self, actions: Actions, terminated: np.ndarray, exposure: Soon | None,
                 row: dict) -> None:
        """The step after the policy acted: the people respond, and the firm books it."""
        stories = self._serve(actions, row)
        self._word_of_mouth(stories, row)
        leaving = self._churn(actions, exposure, row)
        joining = self._adopt(actions, row)
        self._transitions(leaving, joining)
        self._enter(row)
        amount = self._buy_and_pay(leaving, joining, actions, row)
        self._book(row)
        if self.cfg.sim.record_events:
            left = self._dropped if self.noncontractual else leaving.left
            self._record_events(self.steps, joining.adopted, joining.returned, left,
                                terminated, np.concatenate(stories.complaints_at), amount)
        self._stop_at_horizon()

    # -- the phases -------------------------------------------------------------------------
    def _start_draws(self) -> None:
        """The draws every step makes, stream by stream, in the order the phases take them.
        With threads to spare (``crmsim/parallel.py``) each stream's next step is drawn by a
        worker while the model works through this one; the numbers are the same either way."""
        n, per_step = self.population.n, self.per_step
        self.workers = Workers.for_people(n)
        shapes = {"policy": (2, n), "wom": (6, n), "adoption": n, "spending": n}
        if not self.noncontractual:
            shapes["churn"] = n
        self.draws = {name: Ahead(self.workers, self.streams[name], partial(_uniforms, shape))
                      for name, shape in shapes.items()}
        self.draws["service"] = Ahead(
            self.workers, self.streams["service"],
            partial(_service_draws, n, (*per_step.encounter_at_least, 0.0)))

    def _per_step_quantities(self) -> PerStep:
        """The one place where rates per year and durations in days become what a step of
        ``sim.period_days`` needs (``crmsim.units``)."""
        c, dt, days = self.cfg, self.dt, self.cfg.sim.period_days
        svc = c.firm.service
        entry = self.population.entry_time
        # An entrant enters at the end of the step nearest its entry time (the first at the
        # earliest); counted by step, the people in the market at the end of each.
        entry_steps = np.clip(np.rint(entry[c.market.n_people:] / dt), 1, c.sim.steps) \
            if entry is not None else np.zeros(0)
        return PerStep(
            crm_budget=c.firm.crm_budget * dt,
            fixed_cost=c.firm.fixed_cost * dt,
            encounter_at_least=units.poisson_at_least(svc.encounter_rate * dt),
            late_pay_prob=-np.expm1(-self.population.late_pay_rate * dt),
            late_pay_prob_half=-np.expm1(-self.population.late_pay_rate * (dt / 2)),
            sentiment_fade=fade_per_step(c.wom.sentiment_half_life_days, days),
            reputation_fade=fade_per_step(c.firm.reputation_half_life_days, days),
            lapse_fade=churn.lapse_signal_decay(days, c.market.churn.contagion_days),
            lapse_mean=units.mean_of_fade(days, c.market.churn.contagion_days),
            destructive_story=units.share_in_step(c.market.traits.destructive_stories_per_year, dt),
            service_cost_per_year=svc.encounter_rate * svc.cost_per_encounter,
            in_market=c.market.n_people + np.searchsorted(entry_steps, np.arange(c.sim.steps + 1),
                                                          side="right"),
        )

    def _new_row(self) -> dict[str, float]:
        row = dict.fromkeys(metrics.TIMESERIES, 0.0)
        row["step"] = self.steps
        return row

    def _policy_acts(self, row: dict) -> tuple[Actions, np.ndarray]:
        """1. The policy acts on what the firm knows (never the true state)."""
        view = self._observe(self.steps, self.draws["policy"].take())
        actions = self.policy.decide(view, self.per_step.crm_budget, self.steps)
        terminated = self.apply_actions(actions, row)
        # What was invested in capabilities this step counts from the next.
        self.firm.capabilities.develop(actions.invested, self.in_market, self.dt)
        row["terminated"] = self._count(terminated)
        return actions, terminated

    def _serve(self, actions: Actions, row: dict) -> Stories:
        """2-3. Service encounters, each followed by its complaint and recovery. An active
        customer meets the firm a Poisson number of times in the step (``encounter_rate`` per
        year), so a week and a month hold the same encounters per year; a contact adds one more.
        Returns the salient stories each person has to tell."""
        pop = self.population
        n = pop.n
        # Every stream draws for all n people, every step: one uniform decides how many times
        # each person meets the firm, and the first encounter's draws are for everyone.
        u = self._take("service")
        active = pop.status == ACTIVE
        tally = {"encounters": 0, "rude_incidents": 0, "complaints": 0, "recovered": 0,
                 "destructive": 0, "cost_service": 0.0}
        stories = Stories(np.zeros(n, np.int16), np.zeros(n, np.int16), np.zeros(n, np.int16), [])
        # A contact (triggered_contact) is one more encounter on top of the Poisson ones.
        lift = self._effect(actions, "encounter_lift")
        contacted = lift > 0 if np.ndim(lift) else np.zeros(n, dtype=bool)
        at_least = (*self.per_step.encounter_at_least, 0.0)
        met = active & ((u.meet < at_least[0]) | contacted)
        idx = np.flatnonzero(met)
        self._encounter(idx, u.z[idx], u.rude[idx], u.complain[idx], u.recover[idx], actions,
                        tally, stories, contact=contacted[idx])
        self._further_encounters(u, at_least, active, contacted, actions, tally, stories)
        self.firm.learn(stories.encounters > 0, stories.encounters)
        # Destructive customers wear the staff down: training erodes with their share of the
        # encounters, so rude incidents rise for everyone.
        harm = self.cfg.market.traits.destructive_staff_harm * self.dt
        self._update_firm("training", lambda training, destructive, encounters: max(
            training - harm * destructive / encounters, 0.0) if encounters else training,
            tally["destructive"], tally["encounters"])
        for key in ("encounters", "rude_incidents", "complaints", "recovered", "cost_service"):
            row[key] = tally[key]
        row["cost_complaints"] = self.cfg.firm.service.complaint_cost * row["complaints"]
        return stories

    def _further_encounters(self, u: ServiceDraws, at_least: tuple, active: np.ndarray,
                            contacted: np.ndarray, actions: Actions, tally: dict,
                            stories: Stories) -> None:
        """Encounter j >= 2: for those with at least j Poisson encounters, or j - 1 and a
        contact. The draws were made for everyone with at least j - 1 (``ServiceDraws``)."""
        for j, (drawn, z_k, u_k) in enumerate(u.further, start=1):
            more = u.meet[drawn] < at_least[j]
            meets = active[drawn] & (more | contacted[drawn])
            self._encounter(drawn[meets], z_k[meets], u_k[0][meets], u_k[1][meets],
                            u_k[2][meets], actions, tally, stories)

    def _encounter(self, idx: np.ndarray, z: np.ndarray, u_rude: np.ndarray,
                   u_complain: np.ndarray, u_recover: np.ndarray, actions: Actions,
                   tally: dict, stories: Stories, contact: np.ndarray | None = None) -> None:
        """One encounter for each person in ``idx``: experience against expectation
        (disconfirmation), a possible rude incident, then the complaint and its recovery."""
        c, pop, firm = self.cfg, self.population, self.firm
        svc, ex = c.firm.service, c.market.experience
        everyone = True   # every person in idx meets the firm
        rude_p = self._each(experience.rude_probability(svc.rude_prob, firm.training,
                                                        svc.training_effect), idx)
        fit = pop.fit_at(idx)
        noise_sd = svc.noise_sd * (1.0 - _share(_at(self._effect(actions, "noise_cut"), idx)))
        bonus = _at(self._effect(actions, "experience_bonus"), idx) \
            - _at(self._effect(actions, "serve_quality_cut"), idx)
        if contact is not None and contact.any():
            # A contact's personal attention counts at its own encounter (the first this step).
            bonus = bonus + contact * _at(self._effect(actions, "contact_bonus"), idx)
        experienced, rude = experience.encounter(
            everyone, self._each(firm.quality, idx, like=fit), fit, bonus, noise_sd, rude_p,
            svc.rude_shock, ex.fit_weight, z, u_rude,
        )
        sat, pop.expectation[idx], signal = experience.satisfaction_update(
            everyone, experienced, pop.satisfaction[idx], pop.expectation[idx],
            c.market.competitor_quality, ex.disconfirmation_weight, ex.gain, ex.learning_rate,
            ex.expectation_rate,
        )
        complained = experience.complaints(signal, ex.salience, pop.complaint_propensity[idx],
                                           u_complain)
        recovered = experience.recovery(
            complained, svc.recovery_prob + _at(self._effect(actions, "recovery_lift"), idx),
            u_recover)
        sat = np.where(recovered, np.minimum(sat + svc.recovery_boost, 1.0), sat)
        pop.satisfaction[idx] = sat
        pop.complaints[idx] += complained
        # A bad experience put right is not told as a bad story.
        self._count_encounters(idx, np.where(recovered, 0.0, signal), sat, rude, complained,
                               recovered, tally, stories,
                               1.0 - _at(self._effect(actions, "serve_cost_cut"), idx))

    def _count_encounters(self, idx: np.ndarray, signal: np.ndarray, sat: np.ndarray,
                          rude: np.ndarray, complained: np.ndarray, recovered: np.ndarray,
                          tally: dict, stories: Stories, cost_factor: np.ndarray | float = 1.0) -> None:
        """The stories an encounter round leaves to tell and its counts and costs (each
        encounter's cost times ``cost_factor``: a cheaper channel, ``cost_to_serve``)."""
        svc, salience = self.cfg.firm.service, self.cfg.market.experience.salience
        stories.good[idx] += signal > salience
        stories.bad[idx] += signal < -salience
        stories.encounters[idx] += 1
        stories.complaints_at.append(idx[complained])
        # Serving satisfied customers costs less (seed 002), judged once complaints are handled.
        tally["cost_service"] += self._total(svc.cost_per_encounter * cost_factor * (
            1.0 - svc.satisfied_cost_cut * np.maximum(sat, 0.0)), idx)
        tally["destructive"] += self._count_at(idx, self.population.destructive[idx])
        tally["encounters"] += self._count_at(idx)
        tally["rude_incidents"] += self._count_at(idx, rude)
        tally["complaints"] += self._count_at(idx, complained)
        tally["recovered"] += self._count_at(idx, recovered)

    def _word_of_mouth(self, stories: Stories, row: dict) -> None:
        """4. Salient experiences are told to others; what people hear moves their sentiment
        and the firm's reputation. The trapped and the terminated tell their story too (seed
        001: negative retention spreads a bad reputation)."""
        pop, w = self.population, self.cfg.wom
        u_good, u_bad, u_viral, u_pos, u_neg, u_harm = self._take("wom")
        pos = wom.told(stories.good, w.recommend_prob, u_good)
        neg = wom.told(stories.bad, w.complain_to_others_prob, u_bad) + pop.grievance
        # Destructive customers run the firm down whatever happened (seed 001: end these).
        neg += pop.destructive & (pop.status == ACTIVE) & (u_harm < self.per_step.destructive_story)
        pop.grievance[:] = False

        def hear(lam_pos, lam_neg, u_pos, u_neg, sentiment):
            heard_pos = wom.stochastic_round(lam_pos, u_pos)
            heard_neg = wom.stochastic_round(lam_neg, u_neg)
            return heard_pos, heard_neg, wom.sentiment_update(
                sentiment, heard_pos, heard_neg, w.message_weight, self.per_step.sentiment_fade)

        n_viral = self._count_at(wom.viral(neg, w.viral_prob, u_viral))
        # Two independent products over the network, side by side when there are threads.
        lam_pos, lam_neg = self.workers.run(partial(self._expected_heard, pos, w.tell_positive),
                                            partial(self._expected_heard, neg, w.tell_negative))
        lam_neg += self._each(n_viral * w.viral_reach / self.people_per_market)
        # Element-wise: on blocks of people, shared among the threads.
        heard_pos, heard_neg, pop.sentiment = self.workers.blockwise(
            hear, (lam_pos, lam_neg, u_pos, u_neg, pop.sentiment))
        fade = self.per_step.reputation_fade
        self._update_firm("reputation", lambda reputation, sentiment, viral: float(np.clip(
            fade * reputation + (1.0 - fade) * sentiment - w.viral_reputation_hit * viral,
            -1.0, 1.0)), self._market_mean(pop.sentiment), n_viral)
        row.update(wom_positive=self._total(heard_pos), wom_negative=self._total(heard_neg),
                   viral_incidents=n_viral)

    def _expected_heard(self, told: np.ndarray, tell_count: float) -> np.ndarray:
        """Expected messages each person hears (``wom.expected_heard``): over their ties, and
        from anyone in the market telling more people than they have ties."""
        net, w = self.network, self.cfg.wom
        if net.complete:
            return wom.expected_heard(net, told, tell_count, w.strong_rate, w.weak_rate)
        lam, tellers, beyond = wom.heard_over_ties(net, told, tell_count, w.strong_rate,
                                                   w.weak_rate)
        lam += self._each(self._total(beyond, tellers) / self.people_per_market)
        return lam

    def _contagion_ahead(self) -> Soon | None:
        """The contagion exposure churn will feel (None without contagion or contracts): it
        depends on the lapses of earlier steps alone, so a worker thread can work it out while
        the policy acts and the firm serves (``Workers.soon``)."""
        if self.noncontractual or self.cfg.market.churn.contagion <= 0:
            return None
        return self.workers.soon(self._contagion_exposure)

    def _churn(self, actions: Actions, exposure: Soon | None, row: dict) -> Leaving:
        """5. Each active customer decides whether to leave, with contagion from recently
        lapsed neighbours. Switching costs hold some who would have left: they feel trapped.
        Without contracts nobody cancels: customers drop out after a purchase (``_shop``)."""
        ch, pop = self.cfg.market.churn, self.population
        active = pop.status == ACTIVE
        if self.noncontractual:
            none = np.zeros(pop.n, dtype=bool)
            row["at_risk"] = self._count(active)
            return Leaving(none, none)
        u_churn = self._take("churn")

        def decide(mask, satisfaction, commitment, sentiment, switching_cost, price, discount,
                   deal_seeker, price_sensitivity, exposure, lever, base_churn, u):
            felt_price = _felt_price(price, discount, deal_seeker, premium)
            # The lapse signal fades during the step: the hazard feels its mean over the step.
            m = churn.hazard_multiplier(
                satisfaction, commitment, sentiment, switching_cost, felt_price,
                price_sensitivity, exposure * self.per_step.lapse_mean, ch.satisfaction_effect,
                ch.commitment_effect, ch.sentiment_effect, ch.switching_cost_effect,
                ch.price_effect, ch.contagion, ch.dissatisfied_effect)
            return churn.decide(mask, churn.leave_probability(base_churn, m * lever, self.dt), u)

        def leaving(mask: np.ndarray, switching_cost) -> np.ndarray:
            # Element-wise: on blocks of people, shared among the threads (crmsim/parallel.py).
            return self.workers.blockwise(decide, (
                mask, pop.satisfaction, pop.commitment, pop.sentiment, switching_cost, pop.price,
                discount, pop.deal_seeker, pop.price_sensitivity, exposure, lever, pop.base_churn,
                u_churn))

        lever = self._lever_on_hazard(actions, active)
        discount, premium = self._discount(actions), self.cfg.market.traits.deal_seeker_premium
        exposure = exposure.result() if exposure is not None else 0.0
        eligible = active & ch.enabled
        left = leaving(eligible, pop.switching_cost)
        trapped = np.zeros(pop.n, dtype=bool)
        locked = eligible & (pop.switching_cost > 0)
        if locked.any():
            # Who would have left without the lock, and could not (the same draw decides).
            trapped = leaving(locked, 0.0) & ~left
            pop.grievance |= trapped
            pop.sentiment = np.where(trapped, np.maximum(pop.sentiment - ch.trap_resentment, -1.0),
                                     pop.sentiment).astype(np.float32)
        row.update(at_risk=self._count(active), churned=self._count(left),
                   trapped=self._count(trapped), exit_fees=self._end_contracts(left))
        return Leaving(left, trapped)

    def _lever_on_hazard(self, actions: Actions, active: np.ndarray) -> np.ndarray:
        """Levers felt on the churn hazard itself: value added while covered, annoyance from
        sales contacts, and the spike when a contract expires (its extra hazard falls in this
        step)."""
        pop = self.population
        expiring = self._expire_contracts(active)
        lever = (1.0 - _share(self._effect(actions, "churn_cut"))) * (1.0 + pop.annoyance)
        if expiring.any():
            lever = np.where(expiring, lever * (1.0 + pop.contract_spike / self.dt), lever)
            pop.contract_spike[expiring] = 0.0
        return lever

    def _end_contracts(self, left: np.ndarray) -> float:
        """Those who leave pay their exit fees and their contracts end; returns the fees."""
        pop = self.population
        left = np.flatnonzero(left)   # a few per cent: indices are ~10x cheaper than the mask
        exit_fees = self._total(pop.exit_fee[left], left)
        pop.exit_fee[left] = 0.0
        pop.switching_cost[left] = 0.0
        pop.contract_end[left] = -1.0
        pop.contract_lock[left] = 0.0
        pop.contract_spike[left] = 0.0
        return exit_fees

    def _adopt(self, actions: Actions, row: dict) -> Joining:
        """6. Prospects adopt (Bass on the network, moved by sentiment and reputation) and
        lapsed customers may return. Only they are computed (the same formulas, element for
        element)."""
        c, pop, a = self.cfg, self.population, self.cfg.adoption
        ch = c.market.churn
        back = np.flatnonzero(pop.status == LAPSED)

        def comes_back() -> np.ndarray:
            return churn.return_probability(
                ch.winback_rate + _at(self._effect(actions, "return_lift"), back),
                np.exp(ch.sentiment_effect * pop.sentiment[back]), self.dt)

        def imitated() -> np.ndarray:
            # People imitate customers who are content with the firm, not the ones who feel
            # trapped or let down (seed 001: negative retention spreads a bad reputation).
            return self.network.neighbour_share((pop.status == ACTIVE) & (pop.satisfaction >= 0))

        u_adopt = self._take("adoption")
        share, back_p = self.workers.run(imitated, comes_back)   # independent of each other
        lift = self._effect(actions, "adoption_lift")

        def adopts(cand: np.ndarray) -> np.ndarray:
            p_adopt = adoption.bass_step_probability(
                share[cand], a.innovation + _at(lift, cand), a.imitation, self.dt)
            sentiment = pop.sentiment[cand]
            p_adopt = adoption.scale_probability(p_adopt, np.exp(
                a.sentiment_effect * sentiment
                + self._each(a.reputation_effect * self.firm.reputation, cand, like=sentiment)))
            return u_adopt[cand] < p_adopt

        cand = np.flatnonzero(pop.status == PROSPECT)
        adopted = np.zeros(pop.n, dtype=bool)
        adopted[cand] = self.workers.blockwise(adopts, (cand,))   # element-wise, on blocks
        returned = np.zeros(pop.n, dtype=bool)
        returned[back] = u_adopt[back] < back_p
        row.update(acquired=self._count(adopted), won_back=self._count(returned))
        return Joining(adopted, returned)

    def _transitions(self, leaving: Leaving, joining: Joining) -> None:
        """Apply this step's decisions: leavers lapse (and start their contagion signal),
        adopters and returners join."""
        pop = self.population
        self._move(leaving.left, LAPSED)
        left = np.flatnonzero(leaving.left)   # indices: ~10x cheaper than the mask for a few
        pop.lapsed_at[left] = self.steps
        # What the relationship built goes with it: a returning customer starts over.
        for state in (pop.penetration, pop.customization, pop.pantry, pop.annoyance):
            state[left] = 0.0
        pop.lapse_signal *= self.per_step.lapse_fade
        pop.lapse_signal[left] = 1.0
        self._join(joining.adopted | joining.returned)
        pop.ever_customer |= joining.adopted

    def _enter(self, row: dict) -> None:
        """New prospects enter an open market (``market.growth``): the people due by the end of
        this step (none after ``sim.steps``: nobody was allocated for later)."""
        due = self.per_step.in_market
        now = int(due[min(self.steps, due.size - 1)])
        self._markets(self.population.status)[..., self.in_market:now] = PROSPECT
        row["entered"] = now - self.in_market
        self.in_market = now

    def _buy_and_pay(self, leaving: Leaving, joining: Joining, actions: Actions,
                     row: dict) -> np.ndarray:
        """7. Customers grow in tenure and commitment, buy, and pay (late or never). Under
        contracts they pay for the step (``_subscribe``); without contracts they buy on their
        purchase occasions and may drop out (``_shop``)."""
        c, pop = self.cfg, self.population
        active = pop.status == ACTIVE
        np.add(pop.tenure, active, out=pop.tenure)   # a boolean index is ~50x slower
        # Element-wise updates: on blocks of people, shared among the threads.
        pop.commitment = self.workers.blockwise(
            partial(experience.commitment_update, rate=c.market.experience.commitment_rate,
                    dt=self.dt), (active, pop.commitment, pop.satisfaction))
        u_pay = self._take("spending")
        disc = metrics.discount_factor(self.steps, c.sim.discount_rate, self.dt)
        settle = partial(_settle, default_prob=c.market.traits.default_prob,
                         margin=c.firm.margin, discount_factor=disc)
        books = (pop.late_payments, pop.revenue, pop.margin_discounted)  # added to in place
        if self.noncontractual:
            amount = self._shop(active, actions, joining, row)
            late, default = self.workers.blockwise(
                settle, (amount > 0, self.per_step.late_pay_prob, u_pay, amount, *books))
        else:
            amount, late, default = self._subscribe(active, leaving, joining, actions, u_pay,
                                                    books, settle)
        sales = self._total(amount)
        bad = np.flatnonzero(default)
        row.update(
            late_payments=self._count(late),
            defaults=self._count(default),
            sales=sales,
            revenue=sales + row["exit_fees"],
            cost_goods=sales * (1.0 - c.firm.margin),
            cost_bad_debt=self._total(amount[bad], bad),
            cost_late_payments=self._late_payment_cost(late, amount),
            discount_factor=disc,
        )
        return amount

    def _subscribe(self, active: np.ndarray, leaving: Leaving, joining: Joining,
                   actions: Actions, u_pay: np.ndarray, books: tuple,
                   settle: Callable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Contractual purchases: what each customer pays, and who pays late or never
        (``settle``, which adds them to the ``books``). Those who joined or left during the
        step were customers for half of it on average and buy for that half (``metrics``
        documents the timing); promotions move purchases."""
        c, pop, dt = self.cfg, self.population, self.dt
        payers = active | leaving.left
        half = joining.adopted | joining.returned | leaving.left
        # Years of purchases: worked out on the blocks, unless a promotion moves them.
        years = self._promotion_timing(np.where(half, 0.5 * dt, dt), payers, actions) \
            if self._promoting(actions) else None
        disc = c.market.traits.deal_seeker_discount

        def pay(payers, half, years, value, price, deal_seeker, satisfaction, penetration,
                late_half, late_whole, u, *books):
            if years is None:
                years = np.where(half, 0.5 * dt, dt)
            # A late payment is a hazard per year: half a step's worth for the half-step buyers.
            late_p = np.where(half, late_half, late_whole)
            amount = spending.spend(payers, value, _price_paid(price, deal_seeker, disc),
                                    satisfaction, c.market.spend.satisfaction_effect,
                                    penetration, years)
            return amount, *settle(payers, late_p, u, amount, *books)

        return self.workers.blockwise(pay, (   # element-wise: on blocks of people
            payers, half, years, pop.value, pop.price, pop.deal_seeker, pop.satisfaction,
            pop.penetration, self.per_step.late_pay_prob_half, self.per_step.late_pay_prob,
            u_pay, *books))

    def _late_payment_cost(self, late: np.ndarray, amount: np.ndarray) -> float:
        """What is paid late is outstanding for ``days_late``: the spend of that many days (the
        purchase itself, without contracts), costing the cost of capital meanwhile, plus the
        collection effort."""
        c, pop = self.cfg, self.population
        col, late_at = c.firm.collection, np.flatnonzero(late)
        held = (amount[late_at] if self.noncontractual else pop.value[late_at]
                * self._price_paid(late_at) * (col.days_late / units.DAYS_PER_YEAR))
        return (self._count_at(late_at) * col.cost_per_late_payment + self._total(held, late_at)
                * c.sim.discount_rate * col.days_late / units.DAYS_PER_YEAR)

    def _shop(self, active: np.ndarray, actions: Actions, joining: Joining,
              row: dict) -> np.ndarray:
        """7'. Non-contractual purchasing (``behavior/purchase.py``): who joined this step made
        the purchase that made them a customer; the others alive buy on their occasions and
        may drop out after each repeat purchase, unseen by the firm. Returns each person's
        spend this step; keeps the transactions for the event log."""
        pop, rng = self.population, self.streams["purchase"]
        u_count, u_drop = rng.random((2, pop.n))
        joined = joining.adopted | joining.returned
        s = np.flatnonzero(active & ~joined)          # alive through the whole step
        k, bought, dropped = self._occasions(s, self._felt_price(actions), u_count, u_drop)
        # Times (in steps) of the repeat purchases: the first `bought` of each one's K occasions.
        owner = np.repeat(np.arange(s.size), k)
        u_time = rng.random(owner.size)
        order = np.lexsort((u_time, owner))
        rank = np.arange(owner.size) - np.repeat(np.cumsum(k) - k, k)
        keep = order[rank < bought[owner[order]]]
        who_rep, t_rep = s[owner[keep]], self.steps - 1 + u_time[keep]
        first = np.flatnonzero(joined)
        who = np.concatenate([who_rep, first])
        when = np.concatenate([t_rep, np.full(first.size, float(self.steps))])
        amt = self._amounts(who)
        self._record_purchases(who_rep, t_rep, first, amt)
        self._drop_out(dropped)
        self._purchases = (who, when, amt)
        row["churned"] = int(dropped.size)
        return np.bincount(who, weights=amt, minlength=pop.n)

    def _occasions(self, s: np.ndarray, felt: np.ndarray, u_count: np.ndarray,
                   u_drop: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Purchase occasions this step of the people ``s`` (Poisson at their rate, moved by
        satisfaction, sentiment and price), how many they buy before they drop out (dropout
        per purchase moved by the churn hazard multiplier), and who drops out."""
        pop, pc, ch = self.population, self.cfg.market.purchase, self.cfg.market.churn
        lam = pop.purchase_rate[s] * purchase.rate_multiplier(
            pop.satisfaction[s], pop.sentiment[s], felt[s], pop.price_sensitivity[s],
            pc.satisfaction_effect, pc.sentiment_effect, pc.price_effect)
        k = purchase.poisson_counts(lam * self.dt, u_count[s])
        if not ch.enabled:
            return k, k, s[:0]
        exposure = (self._contagion_exposure(self.workers) * self.per_step.lapse_mean
                    if ch.contagion > 0 else 0.0)
        m = churn.hazard_multiplier(
            pop.satisfaction[s], pop.commitment[s], pop.sentiment[s], pop.switching_cost[s],
            felt[s], pop.price_sensitivity[s], _at(exposure, s), ch.satisfaction_effect,
            ch.commitment_effect, ch.sentiment_effect, ch.switching_cost_effect,
            ch.price_effect, ch.contagion, ch.dissatisfied_effect)
        g = purchase.purchases_until_dropout(
            purchase.dropout_probability(pop.dropout_prob[s], m), u_drop[s])
        return k, np.minimum(k, g).astype(np.int64), s[g <= k]

    def _record_purchases(self, who_rep: np.ndarray, t_rep: np.ndarray, first: np.ndarray,
                          amt: np.ndarray) -> None:
        """The firm's records: a first purchase, or one more repeat purchase."""
        pop = self.population
        is_new = np.isnan(pop.first_purchase[first])
        new, again = first[is_new], first[~is_new]
        pop.first_purchase[new] = self.steps * self.dt
        pop.last_purchase[first] = self.steps * self.dt
        rep = np.concatenate([who_rep, again])
        np.add.at(pop.repeat_purchases, rep, 1)
        np.add.at(pop.repeat_amount, rep,
                  np.concatenate([amt[:who_rep.size], amt[who_rep.size:][~is_new]]))
        np.maximum.at(pop.last_purchase, who_rep, t_rep * self.dt)

    def _drop_out(self, dropped: np.ndarray) -> None:
        """Dropouts lapse now, unseen by the firm; without a contract there is no exit fee."""
        pop = self.population
        dead = np.zeros(pop.n, dtype=bool)
        dead[dropped] = True
        self._move(dead, LAPSED)
        pop.lapsed_at[dead] = self.steps
        pop.lapse_signal[dead] = 1.0
        pop.exit_fee[dead] = 0.0
        pop.switching_cost[dead] = 0.0
        self._dropped = dead

    def _amounts(self, who: np.ndarray) -> np.ndarray:
        """Gamma-Gamma transaction amounts of the people ``who`` (one entry per purchase), moved
        by price, satisfaction and cross-/up-selling as in the contractual spend."""
        pop, pc = self.population, self.cfg.market.purchase
        z = self.streams["purchase"].gamma(pc.p, 1.0 / pop.spend_rate[who])
        return spending.spend(np.ones(who.size, dtype=bool), z, self._price_paid(who),
                              pop.satisfaction[who], self.cfg.market.spend.satisfaction_effect,
                              pop.penetration[who])

    def _book(self, row: dict) -> None:
        """8. Accounting and data: fixed cost, the customer base's equity, totals, the
        DataCollector's row."""
        row["cost_fixed"] = self.per_step.fixed_cost
        # Independent reductions over the people: side by side when there are threads.
        row["customer_equity"], state = self.workers.run(self._customer_equity, self._state_means)
        self._finish_row(row, state)

    def _customer_equity(self) -> float:
        """Expected discounted future contribution of today's active customers, each from their
        own current hazard and spend (``metrics.customer_equity``; Gupta, Lehmann & Stuart
        2004). Contribution per year: the margin on their spend less bad debt, the expected cost
        of serving them and of their late payments; hazard per year: their base churn moved by
        their current satisfaction, commitment, sentiment, switching cost and price (without
        contracts: their purchase rate times their dropout per purchase). CRM spend and fixed
        costs are the firm's, not a customer's, and are not in it."""
        idx = np.flatnonzero(self.population.status == ACTIVE)
        if idx.size == 0:
            return 0.0
        # Element-wise, on blocks of customers; then one sum over all of them, so that the
        # summation order does not depend on the blocks.
        equity = self.workers.blockwise(self._equity_each, (idx,))
        # A pairwise sum, the same on every Python (math.fsum is exact but ~50x slower here).
        return self._total(equity, idx)

    def _equity_each(self, idx: np.ndarray) -> np.ndarray:
        """Each customer's equity for ``_customer_equity`` (the active customers ``idx``)."""
        c, pop = self.cfg, self.population
        ch, svc, col = c.market.churn, c.firm.service, c.firm.collection
        sat = pop.satisfaction[idx]
        price = self._price_paid(idx)
        felt = _felt_price(price, 0.0, pop.deal_seeker[idx], c.market.traits.deal_seeker_premium)
        m = churn.hazard_multiplier(sat, pop.commitment[idx], pop.sentiment[idx],
                                    pop.switching_cost[idx], felt, pop.price_sensitivity[idx], 0.0,
                                    ch.satisfaction_effect, ch.commitment_effect,
                                    ch.sentiment_effect, ch.switching_cost_effect,
                                    ch.price_effect, 0.0, ch.dissatisfied_effect)
        lift = np.maximum(1.0 + c.market.spend.satisfaction_effect * sat, 0.0) * (
            1.0 + pop.penetration[idx])
        if self.noncontractual:
            pc = c.market.purchase
            rate = pop.purchase_rate[idx] * purchase.rate_multiplier(
                sat, pop.sentiment[idx], felt, pop.price_sensitivity[idx],
                pc.satisfaction_effect, pc.sentiment_effect, pc.price_effect)
            spend = rate * pc.p / pop.spend_rate[idx] * price * lift
            drop = purchase.dropout_probability(pop.dropout_prob[idx], m) if ch.enabled else 0.0
            hazard = rate * drop
        else:
            spend = pop.value[idx] * price * lift
            hazard = (-np.log1p(-np.minimum(pop.base_churn[idx].astype(np.float64), 1 - 1e-12)) * m
                      if ch.enabled else np.zeros(idx.size))
        serve = svc.encounter_rate * svc.cost_per_encounter * (
            1.0 - svc.satisfied_cost_cut * np.maximum(sat, 0.0))
        late = pop.late_pay_rate[idx] * col.cost_per_late_payment
        contribution = spend * (c.firm.margin - c.market.traits.default_prob) - serve - late
        return metrics.customer_equity(contribution, hazard, c.sim.discount_rate, self.dt)

    def _price_paid(self, idx: np.ndarray) -> np.ndarray:
        """The price each person of ``idx`` pays (``_price_paid`` of the module)."""
        pop = self.population
        return _price_paid(pop.price[idx], pop.deal_seeker[idx],
                           self.cfg.market.traits.deal_seeker_discount)

    # -- one number per market ---------------------------------------------------------------
    # A step's counts and sums, and what is one number for the whole market (the firm's
    # quality, training and reputation), go through these: ``crmsim.stacked`` steps several
    # replicates of a market at once and gives them one number per replicate.
    @property
    def people_per_market(self) -> int:
        """The people simulated in the market (its entrants included)."""
        return self.population.n

    def _take(self, stream: str):
        """The step's draws of ``stream`` (``_start_draws``)."""
        return self.draws[stream].take()

    def _count(self, mask: np.ndarray) -> int:
        """How many people ``mask`` holds."""
        return int(np.count_nonzero(mask))

    def _count_at(self, idx: np.ndarray, mask: np.ndarray | None = None) -> int:
        """How many of the people ``idx`` there are (where ``mask``, one per person of idx)."""
        return int(idx.size if mask is None else np.count_nonzero(mask))

    def _total(self, values: np.ndarray, idx: np.ndarray | None = None) -> float | int:
        """The sum of ``values`` (of everyone, or one per person of the sorted ``idx``): a
        Python number."""
        return values.sum().item()

    def _each(self, value, idx: np.ndarray | None = None, like: np.ndarray | None = None):
        """A market's ``value`` for each person (of ``idx``), as it meets the array ``like``:
        in one market, the number itself."""
        return value

    def _update_firm(self, name: str, rule: Callable, *per_market) -> None:
        """The firm's ``name`` becomes ``rule(its value, *per_market)``."""
        setattr(self.firm, name, rule(getattr(self.firm, name), *per_market))

    def _markets(self, x: np.ndarray) -> np.ndarray:
        """``x`` by market, the people on the last axis."""
        return x

    def _market_mean(self, x: np.ndarray) -> float:
        """The mean of ``x`` over the people in the market."""
        return float(self._markets(x)[..., :self.in_market].mean(axis=-1, dtype=np.float64))

    def _mean_over(self, x: np.ndarray, mask: np.ndarray) -> float:
        """The mean of ``x`` over the people ``mask`` holds (``metrics.mean_over``)."""
        return metrics.mean_over(x, mask)

    def _nps(self, satisfaction: np.ndarray, active: np.ndarray) -> float:
        """The market's net promoter score (``metrics.nps``)."""
        return metrics.nps(satisfaction, active)

    # -- helpers ----------------------------------------------------------------------------
    def _promotion_timing(self, years: np.ndarray, buying: np.ndarray,
                          actions: Actions) -> np.ndarray:
        """The years' worth of purchases bought this step: more while a promotion runs (the
        bump; part of it bought ahead into the pantry), less after it while the pantry is used
        up (the dip). Called only while ``_promoting``."""
        pop = self.population
        bump = self._effect(actions, "sales_bump")
        on_deal = np.asarray(bump) > 0
        use = np.where(on_deal | ~buying, 0.0, np.minimum(pop.pantry, years))
        ahead = np.where(buying, years * self._effect(actions, "stockpile"), 0.0)
        pop.pantry = (pop.pantry - use + ahead).astype(np.float32)
        return years * (1.0 + bump) - use

    def _promoting(self, actions: Actions) -> bool:
        """Whether a promotion moves purchases this step (a bump now, or a pantry to use up)."""
        return bool(np.ndim(self._effect(actions, "sales_bump")) or self.population.pantry.any())

    def _expire_contracts(self, active: np.ndarray) -> np.ndarray:
        """Contracts whose term ends at this step (the step nearest the expiry day): the lock
        they added ends. Returns who is expiring."""
        pop, days = self.population, self.cfg.sim.period_days
        expiring = active & (pop.contract_end >= 0) & (pop.contract_end <= self.steps * days + days / 2)
        if expiring.any():
            pop.switching_cost[expiring] = np.maximum(
                pop.switching_cost[expiring] - pop.contract_lock[expiring], 0.0)
            pop.contract_end[expiring] = -1.0
            pop.contract_lock[expiring] = 0.0
        return expiring

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
        if "contract_days" in p:
            signed = p["contract_days"] > 0
            pop.contract_end[signed] = self.steps * self.cfg.sim.period_days + p["contract_days"][signed]
            pop.contract_lock[signed] = np.clip(p["switching_cost"][signed], 0.0, 1.0)
            pop.contract_spike[signed] = self._effect(actions, "expiry_spike")[signed] \
                if "expiry_spike" in p else 0.0
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
        if "offer_take" in p:
            # Only a share of the contacted take the offer, and only satisfied customers buy
            # more (seed 002); some who do not take it are annoyed (their hazard rises).
            u_take, u_annoy = self.streams["offers"].random((2, pop.n))
            took = u_take < p["offer_take"] * np.maximum(pop.satisfaction, 0.0)
            pop.penetration += np.where(took, self._effect(actions, "offer_gain"), 0.0).astype(np.float32)
            annoyed = ~took & (u_annoy < self._effect(actions, "offer_annoy"))
            pop.annoyance += np.where(annoyed, self._effect(actions, "annoy_hazard"), 0.0).astype(np.float32)
        if "heard" in p:
            sat = pop.satisfaction
            pop.satisfaction = np.where(sat < 0, np.minimum(sat + p["heard"], 0.0), sat).astype(np.float32)
        if "knowledge" in p:
            firm.learn(p["knowledge"] > 0, p["knowledge"])
        if "ideas" in p:
            # Ideas come from the innovators asked, whoever the firm thinks they are (seed 003).
            ideas = float(p["ideas"][pop.innovator].sum(dtype=np.float64)) / self.in_market
            firm.quality = float(min(firm.quality + ideas * (1.0 - firm.quality), 1.0))
        terminated = np.zeros(pop.n, dtype=bool)
        if "terminate" in p:
            terminated = (p["terminate"] > 0) & (pop.status == ACTIVE)
            self._move(terminated, TERMINATED)
            pop.grievance |= terminated
            pop.sentiment[terminated] = -1.0
        for cat, amount in actions.spend.items():
            row[f"cost_{cat}"] += amount
        row["unspent"] = actions.unspent
        return terminated

    def _init_purchasing(self) -> None:
        """Non-contractual setting: each person's BG/NBD and Gamma-Gamma traits, and an empty
        purchase record (``behavior/purchase.py``)."""
        pop, pc, n = self.population, self.cfg.market.purchase, self.population.n
        pop.purchase_rate, pop.dropout_prob, pop.spend_rate = purchase.traits(
            pc.r, pc.alpha, pc.a, pc.b, pc.q, pc.gamma, n, self.streams["purchase"])
        pop.first_purchase = np.full(n, np.nan)
        pop.last_purchase = np.full(n, np.nan)
        pop.repeat_purchases = np.zeros(n, dtype=np.int32)
        pop.repeat_amount = np.zeros(n, dtype=np.float64)
        self._dropped = np.zeros(n, dtype=bool)

    def _initial_purchases(self) -> None:
        """Customers at step 0 made their first purchase at time 0: in their record and the
        event log, not in the run's revenue (it was made before the run, like the contractual
        customers' past payments)."""
        pop = self.population
        first = np.flatnonzero(pop.status == ACTIVE)
        pop.first_purchase[first] = 0.0
        pop.last_purchase[first] = 0.0
        self._purchases = (first, np.zeros(first.size), self._amounts(first))

    def _felt_price(self, actions: Actions) -> np.ndarray:
        """The price as each person feels it this step (``_felt_price`` of the module)."""
        pop = self.population
        return _felt_price(pop.price, self._discount(actions), pop.deal_seeker,
                           self.cfg.market.traits.deal_seeker_premium)

    def _discount(self, actions: Actions) -> np.ndarray | float:
        """The promotion's discount on the price this step, per person (or one number)."""
        return _share(self._effect(actions, "discount"))

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

    def _contagion_exposure(self, workers: Workers | None = None) -> np.ndarray:
        net, sig = self.network, self.population.lapse_signal
        if net.complete:
            # Well-mixed: each person is in touch with mean_degree others drawn at random.
            return self.cfg.network.mean_degree * (sig.sum() - sig) / max(net.n - 1, 1)
        # With ``workers``: the product by blocks of rows, one per thread (the same sums).
        exposure = net.neighbour_sum(sig, "strong", workers)
        if net.weak is not None:
            exposure += net.neighbour_sum(sig, "weak", workers)
        return exposure

    def _state_means(self) -> dict[str, float]:
        """The people's state in the step's row: counts by status, mean satisfaction,
        sentiment and commitment, NPS."""
        pop = self.population
        active = pop.status == ACTIVE
        return dict(
            n_prospect=self._count(pop.status == PROSPECT), n_active=self._count(active),
            n_lapsed=self._count(pop.status == LAPSED),
            n_terminated=self._count(pop.status == TERMINATED),
            n_outside=self._count(pop.status == OUTSIDE),
            satisfaction_mean=self._mean_over(pop.satisfaction, active),
            sentiment_mean=self._market_mean(pop.sentiment),
            commitment_mean=self._mean_over(pop.commitment, active),
            nps=self._nps(pop.satisfaction, active),
        )

    def _finish_row(self, row: dict, state: dict[str, float] | None = None) -> None:
        """Complete the step's row (``state``: ``_state_means()``, if made already) and hand
        it to the DataCollector."""
        firm = self.firm
        row.update(state if state is not None else self._state_means())
        row.update(reputation=firm.reputation, quality=firm.quality,
                   **{f"capability_{k}": v for k, v in firm.capabilities.level.items()})
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
        if self.noncontractual:
            self._initial_purchases()
        self._finish_row(row)
        if self.cfg.sim.record_events:
            initial = self.population.status == ACTIVE
            none = np.zeros_like(initial)
            self._record_events(0, initial, none, none, none, np.arange(0),
                                np.zeros(self.population.n))

    def _record_events(self, t, adopted, returned, left, terminated, complained_at,
                       amount) -> None:
        """The step's events; ``complained_at`` lists one index per complaint (a person can
        complain more than once in a step), the others are masks."""
        date = DATE_ORIGIN + pd.Timedelta(days=t * self.cfg.sim.period_days)
        parts = []
        if self.noncontractual:
            # Each transaction at its own time; step-end events at the step's date.
            who, when, amt = self._purchases
            order = np.argsort(when, kind="stable")
            parts.append(pd.DataFrame({
                "customer_id": who[order], "step": t,
                "date": DATE_ORIGIN + pd.to_timedelta(when[order] * self.cfg.sim.period_days,
                                                      unit="D"),
                "event": pd.Categorical(["purchase"] * who.size, categories=EVENT_TYPES),
                "amount": amt[order],
            }))
        for kind, mask, amt in (
            ("acquisition", adopted, None), ("win_back", returned, None), ("churn", left, None),
            ("termination", terminated, None), ("complaint", complained_at, None),
            ("purchase", (amount > 0) & (not self.noncontractual), amount),
        ):
            ids = np.flatnonzero(mask) if mask.dtype == bool else np.sort(mask)
            if ids.size:
                parts.append(pd.DataFrame({
                    "customer_id": ids, "step": t, "date": date,
                    "event": pd.Categorical([kind] * ids.size, categories=EVENT_TYPES),
                    "amount": amt[ids] if amt is not None else 0.0,
                }))
        if parts:
            frame = pd.concat(parts, ignore_index=True)
            if self.noncontractual:
                frame = frame.sort_values("date", kind="stable", ignore_index=True)
            self.events.append(frame)

    # -- outputs ----------------------------------------------------------------------------
    def levers_table(self) -> pd.DataFrame:
        """Each lever's spend, reach and incremental effect (``levers.parquet``), from the
        firm's records now (``crmsim.levers``). A view's random targeting numbers come from a
        throwaway generator: the run's streams are left as they are."""
        return self.policy.levers_table(self._observe(self.steps + 1, np.random.default_rng(0)))

    def _observe(self, step: int, rng: np.random.Generator | np.ndarray):
        """What the firm knows at the start of ``step`` (``FirmView``); ``rng`` is the policy
        stream, or the step's draws from it."""
        c = self.cfg
        return self.firm.observe(self.population, self.network.degree, step, c.sim.period_days,
                                 rng, c.firm.margin, self.per_step.service_cost_per_year,
                                 c.market.purchase if self.noncontractual else None)

    def timeseries(self) -> pd.DataFrame:
        df = self.datacollector.get_model_vars_dataframe()   # RowCollector's: a RangeIndex
        if df["step"].dtype != np.int64:   # whole numbers from the start (``_new_row``)
            df["step"] = df["step"].astype(np.int64)
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
