"""Replicates stepped together: R runs of one config, one array axis.

A ``StackedModel`` holds R ``CRMModel`` replicates of one config (one per seed) and steps them
as one market of R x n people: the people of replicate r are the block ``r*n .. (r+1)*n`` of
every array, the networks one block-diagonal matrix, so each element-wise phase is one numpy
call for all of them instead of R. What is one number per market (the firm's quality,
training and reputation, the counts and sums of a step's row) is one number per replicate.
Each replicate keeps everything that is its own: its random streams (each draws exactly what a
run on its own draws), its firm's policy (which decides on the replicate's own people, as
views of the blocks), its row and its DataCollector. So every replicate's numbers are those of
``CRMModel`` with its seed, to the last bit (``tests/test_stacked.py``):

- sums over people add each replicate's block on its own, in the order a run on its own adds
  them (numpy's pairwise sums depend on where they start and end);
- a market's number meets a person's the way a Python number meets an array (numpy's
  promotion: the array's dtype decides), so it is cast to that dtype first;
- a step in which the replicates' policies chose different kinds of effects (an effect some
  allocate and others do not) is finished replicate by replicate, with ``CRMModel``'s own
  phases on the blocks.

What cannot be stacked runs replicate by replicate (``stackable``): a non-contractual market,
the event log, and the complete network, whose sums run over the whole market.
"""

from __future__ import annotations

from dataclasses import fields
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp

from . import metrics, units
from .actions import Actions
from .behavior import adoption, churn, experience, wom
from .config import CRMConfig
from .firm import Firm
from .model import CRMModel, Joining, Leaving, Stories, _at, _felt_price, _share
from .network import Network
from .parallel import Workers
from .population import ACTIVE, LAPSED, PROSPECT, STATUS_NAMES, Population


def stackable(cfg: CRMConfig) -> bool:
    """Whether replicates of ``cfg`` can step together (else they run one by one)."""
    return (cfg.market.purchase.kind != "noncontractual" and not cfg.sim.record_events
            and cfg.network.kind != "complete")


def _stack_layers(layers: list) -> sp.csr_array | None:
    if layers[0] is None:
        return None
    a = sp.block_diag(layers, format="csr")
    out = sp.csr_array((a.data.astype(layers[0].dtype), a.indices.astype(np.int32),
                        a.indptr.astype(np.int32)), shape=a.shape)
    out.has_sorted_indices = True
    return out


def stack_networks(nets: list[Network]) -> Network:
    """The networks of the replicates as one network: each replicate's people know only each
    other (one block-diagonal matrix per layer)."""
    return Network(n=sum(net.n for net in nets), kind=nets[0].kind,
                   strong=_stack_layers([net.strong for net in nets]),
                   weak=_stack_layers([net.weak for net in nets]),
                   degree=np.concatenate([net.degree for net in nets]))


class StackedModel(CRMModel):
    """R replicates of one checked config (``configs``: one typed config per seed, as
    ``validation.reseeded`` makes them) stepped together. ``replicates`` are the R
    ``CRMModel``s, whose tables (``timeseries``, ``levers_table``, ``population``) are read
    as those of runs on their own."""

    def __init__(self, configs: list[CRMConfig]) -> None:   # noqa: D107 (no Mesa model of its own)
        self.replicates = reps = [CRMModel(c) for c in configs]
        first = reps[0]
        self.cfg, self.dt, self.noncontractual = first.cfg, first.dt, False
        self.R, self.n = len(reps), first.population.n
        self.rep = np.repeat(np.arange(self.R), self.n)       # each person's replicate
        self.starts = np.arange(self.R + 1) * self.n           # where each block starts
        self._fields = [f.name for f in fields(Population) if getattr(first.population, f.name) is not None]
        self.population = Population(**{name: self._joined("population", name) for name in self._fields})
        self.network = stack_networks([m.network for m in reps])
        self.knowledge = SimpleNamespace(knowledge_sd=self._joined("firm", "knowledge_sd"),
                                         learning=first.firm.learning, floor=first.firm.floor)
        self.per_step = first.per_step._replace(
            late_pay_prob=np.concatenate([m.per_step.late_pay_prob for m in reps]),
            late_pay_prob_half=np.concatenate([m.per_step.late_pay_prob_half for m in reps]))
        self.workers = Workers(1)
        self.in_market = first.in_market
        self.steps = 0
        self.running = True
        self._views: dict[str, tuple] = {}
        self._scatter()

    def _joined(self, part: str, name: str) -> np.ndarray:
        return np.concatenate([getattr(getattr(m, part), name) for m in self.replicates])

    # -- the blocks: each replicate's arrays are views of the stacked ones -------------------
    def _holders(self):
        """(the stacked holder, each replicate's holder, name) of every per-person array."""
        reps = self.replicates
        for name in self._fields:
            yield self.population, [m.population for m in reps], name
        yield self.knowledge, [m.firm for m in reps], "knowledge_sd"

    def _scatter(self) -> None:
        """Point every replicate's arrays at its block of the stacked ones that are new."""
        for whole, parts, name in self._holders():
            array = getattr(whole, name)
            if self._views.get(name, (None,))[0] is not array:
                views = [array[lo:hi] for lo, hi in zip(self.starts[:-1], self.starts[1:], strict=True)]
                for part, view in zip(parts, views, strict=True):
                    setattr(part, name, view)
                self._views[name] = (array, views)

    def _gather(self) -> None:
        """A replicate's phase may replace one of its arrays (a policy's lasting effects, the
        firm learning): the stacked array becomes a new one made of the blocks, so that an
        earlier view of the old array keeps what it held, as in a run on its own."""
        for whole, parts, name in self._holders():
            views = self._views[name][1]
            arrays = [getattr(part, name) for part in parts]
            if any(a is not v for a, v in zip(arrays, views, strict=True)):
                setattr(whole, name, np.concatenate(arrays))
        self._scatter()

    # -- per replicate: sums in a run's own order, a market's number per person -------------
    def _sums(self, values: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Each replicate's sum of ``values`` (of everyone, or of the sorted people ``idx``),
        added as a run on its own adds them; as float64 (or int64), as ``float()`` of a run's
        sum would be."""
        kind = np.float64 if values.dtype.kind == "f" else np.int64
        if idx is None:
            return values.reshape(self.R, -1).sum(axis=1).astype(kind)
        cut = np.searchsorted(idx, self.starts)
        return np.array([values[lo:hi].sum() for lo, hi in zip(cut[:-1], cut[1:], strict=True)],
                        dtype=kind)

    def _counts(self, mask: np.ndarray) -> np.ndarray:
        return np.count_nonzero(mask.reshape(self.R, -1), axis=1)

    def _counts_at(self, idx: np.ndarray) -> np.ndarray:
        return np.bincount(idx // self.n, minlength=self.R)

    def _firm_values(self, name: str) -> np.ndarray:
        return np.array([getattr(m.firm, name) for m in self.replicates])

    def _set_firm(self, name: str, values: np.ndarray) -> None:
        for m, v in zip(self.replicates, values.tolist(), strict=True):
            setattr(m.firm, name, v)

    def _take(self, stream: str) -> np.ndarray:
        return np.concatenate([m.draws[stream].take() for m in self.replicates], axis=-1)

    # -- the step ------------------------------------------------------------------------------
    def step(self) -> None:
        self.steps += 1
        for m in self.replicates:
            m.steps += 1
            if "time" in vars(m):     # Mesa >= 3.4 keeps time beside steps
                m.time += 1
        self._scatter()
        rows = [m._new_row() for m in self.replicates]
        decided = [m._policy_acts(row) for m, row in zip(self.replicates, rows, strict=True)]
        self._gather()
        actions = self._merge([a for a, _ in decided])
        if actions is None:     # the replicates chose different kinds of effects
            for m, (a, terminated), row in zip(self.replicates, decided, rows, strict=True):
                m._respond(a, terminated, m._contagion_ahead(), row)
            self._gather()
            self.in_market = self.replicates[0].in_market
        else:
            tab: dict[str, np.ndarray] = {}
            stories = self._serve(actions, tab)
            self._word_of_mouth(stories, tab)
            leaving = self._churn(actions, None, tab)
            joining = self._adopt(actions, tab)
            self._transitions(leaving, joining)
            self._enter(tab)
            self._buy_and_pay(leaving, joining, actions, tab)
            self._book(tab, rows)
        self.running = any(m.running for m in self.replicates)

    def finish(self) -> None:
        """After the last step: every replicate's arrays are its block of the stacked ones."""
        self._scatter()

    def _merge(self, per_rep: list[Actions]) -> Actions | None:
        """The replicates' per-person effects as stacked arrays, or None when some replicate
        allocated an effect another did not."""
        names = set(per_rep[0].person)
        if any(set(a.person) != names for a in per_rep[1:]):
            return None
        out = Actions(self.R * self.n)
        for name in per_rep[0].person:
            out.person[name] = np.concatenate([a.person[name] for a in per_rep])
        return out

    # -- the phases that count or sum per replicate ----------------------------------------
    def _serve(self, actions: Actions, row: dict) -> Stories:
        pop = self.population
        N = pop.n
        draws = [m.draws["service"].take() for m in self.replicates]
        first = np.concatenate([u.first for u in draws], axis=1)
        meet, rude, complain, recover = first
        z = np.concatenate([u.z for u in draws])
        active = pop.status == ACTIVE
        tally = {k: np.zeros(self.R) for k in ("cost_service",)}
        tally.update({k: np.zeros(self.R, dtype=np.int64)
                      for k in ("encounters", "rude_incidents", "complaints", "recovered", "destructive")})
        stories = Stories(np.zeros(N, np.int16), np.zeros(N, np.int16), np.zeros(N, np.int16), [])
        lift = self._effect(actions, "encounter_lift")
        contacted = lift > 0 if np.ndim(lift) else np.zeros(N, dtype=bool)
        at_least = (*self.per_step.encounter_at_least, 0.0)
        met = active & ((meet < at_least[0]) | contacted)
        idx = np.flatnonzero(met)
        self._encounter(idx, z[idx], rude[idx], complain[idx], recover[idx], actions, tally,
                        stories, contact=contacted[idx])
        rounds = max(len(u.further) for u in draws)
        for j in range(1, rounds + 1):
            parts = [(u.further[j - 1], r * self.n) for r, u in enumerate(draws) if len(u.further) >= j]
            drawn = np.concatenate([d + off for (d, _, _), off in parts])
            z_k = np.concatenate([zk for (_, zk, _), _ in parts])
            u_k = np.concatenate([uk for (_, _, uk), _ in parts], axis=1)
            more = meet[drawn] < at_least[j]
            meets = active[drawn] & (more | contacted[drawn])
            self._encounter(drawn[meets], z_k[meets], u_k[0][meets], u_k[1][meets],
                            u_k[2][meets], actions, tally, stories)
        Firm.learn(self.knowledge, stories.encounters > 0, stories.encounters)
        harm = self.cfg.market.traits.destructive_staff_harm * self.dt
        training = self._firm_values("training")
        for r, m in enumerate(self.replicates):
            if tally["encounters"][r]:
                m.firm.training = max(training[r] - harm * int(tally["destructive"][r])
                                      / int(tally["encounters"][r]), 0.0)
        for key in ("encounters", "rude_incidents", "complaints", "recovered"):
            row[key] = tally[key]
        row["cost_service"] = tally["cost_service"]
        row["cost_complaints"] = self.cfg.firm.service.complaint_cost * row["complaints"]
        return stories

    def _encounter(self, idx, z, u_rude, u_complain, u_recover, actions, tally, stories,
                   contact=None) -> None:
        c, pop = self.cfg, self.population
        svc, ex = c.firm.service, c.market.experience
        who = self.rep[idx]
        rude_p = experience.rude_probability(svc.rude_prob, self._firm_values("training"),
                                             svc.training_effect)[who]
        fit = pop.fit_at(idx)
        # The firm's quality meets the people's fit as a Python number would: in its dtype.
        quality = self._firm_values("quality").astype(fit.dtype)[who]
        noise_sd = svc.noise_sd * (1.0 - _share(_at(self._effect(actions, "noise_cut"), idx)))
        bonus = _at(self._effect(actions, "experience_bonus"), idx) \
            - _at(self._effect(actions, "serve_quality_cut"), idx)
        if contact is not None and contact.any():
            bonus = bonus + contact * _at(self._effect(actions, "contact_bonus"), idx)
        experienced, rude = experience.encounter(
            True, quality, fit, bonus, noise_sd, rude_p, svc.rude_shock, ex.fit_weight, z, u_rude)
        sat, pop.expectation[idx], signal = experience.satisfaction_update(
            True, experienced, pop.satisfaction[idx], pop.expectation[idx],
            c.market.competitor_quality, ex.disconfirmation_weight, ex.gain, ex.learning_rate,
            ex.expectation_rate)
        complained = experience.complaints(signal, ex.salience, pop.complaint_propensity[idx],
                                           u_complain)
        recovered = experience.recovery(
            complained, svc.recovery_prob + _at(self._effect(actions, "recovery_lift"), idx),
            u_recover)
        sat = np.where(recovered, np.minimum(sat + svc.recovery_boost, 1.0), sat)
        pop.satisfaction[idx] = sat
        pop.complaints[idx] += complained
        salience = ex.salience
        signal = np.where(recovered, 0.0, signal)
        stories.good[idx] += signal > salience
        stories.bad[idx] += signal < -salience
        stories.encounters[idx] += 1
        cost_factor = 1.0 - _at(self._effect(actions, "serve_cost_cut"), idx)
        tally["cost_service"] += self._sums(
            svc.cost_per_encounter * cost_factor * (1.0 - svc.satisfied_cost_cut * np.maximum(sat, 0.0)), idx)
        tally["destructive"] += self._counts_at(idx[pop.destructive[idx]])
        tally["encounters"] += self._counts_at(idx)
        tally["rude_incidents"] += self._counts_at(idx[rude])
        tally["complaints"] += self._counts_at(idx[complained])
        tally["recovered"] += self._counts_at(idx[recovered])

    def _word_of_mouth(self, stories: Stories, row: dict) -> None:
        pop, w = self.population, self.cfg.wom
        u_good, u_bad, u_viral, u_pos, u_neg, u_harm = self._take("wom")
        pos = wom.told(stories.good, w.recommend_prob, u_good)
        neg = wom.told(stories.bad, w.complain_to_others_prob, u_bad) + pop.grievance
        neg += pop.destructive & (pop.status == ACTIVE) & (u_harm < self.per_step.destructive_story)
        pop.grievance[:] = False
        idx = np.flatnonzero(neg)
        p_any = -np.expm1(neg[idx] * np.log1p(-min(w.viral_prob, 1.0 - 1e-12)))
        n_viral = self._counts_at(idx[u_viral[idx] < p_any])
        lam_pos = self._expected_heard(pos, w.tell_positive, w.strong_rate, w.weak_rate)
        lam_neg = self._expected_heard(neg, w.tell_negative, w.strong_rate, w.weak_rate)
        lam_neg += (n_viral * w.viral_reach / self.n)[self.rep]
        heard_pos = wom.stochastic_round(lam_pos, u_pos)
        heard_neg = wom.stochastic_round(lam_neg, u_neg)
        pop.sentiment = wom.sentiment_update(pop.sentiment, heard_pos, heard_neg, w.message_weight,
                                             self.per_step.sentiment_fade)
        fade = self.per_step.reputation_fade
        mean = pop.sentiment.reshape(self.R, -1)[:, :self.in_market].mean(axis=1, dtype=np.float64)
        self._set_firm("reputation", np.clip(
            fade * self._firm_values("reputation") + (1.0 - fade) * mean
            - w.viral_reputation_hit * n_viral, -1.0, 1.0))
        row.update(wom_positive=self._sums(heard_pos.astype(np.int64)),
                   wom_negative=self._sums(heard_neg.astype(np.int64)), viral_incidents=n_viral)

    def _expected_heard(self, told: np.ndarray, tell_count: float, strong_rate: float,
                        weak_rate: float) -> np.ndarray:
        """``wom.expected_heard`` per replicate: what a teller tells beyond their ties lands
        on anyone in the teller's own market."""
        lam, tellers, beyond = wom.heard_over_ties(self.network, told, tell_count, strong_rate,
                                                   weak_rate)
        lam += (self._sums(beyond, tellers) / self.n)[self.rep]
        return lam

    def _churn(self, actions: Actions, exposure, row: dict) -> Leaving:
        ch, pop = self.cfg.market.churn, self.population
        active = pop.status == ACTIVE
        u_churn = self._take("churn")
        lever = self._lever_on_hazard(actions, active)
        discount, premium = self._discount(actions), self.cfg.market.traits.deal_seeker_premium
        exposure = self._contagion_exposure() if ch.contagion > 0 else 0.0

        def leaving(mask, switching_cost):
            felt_price = _felt_price(pop.price, discount, pop.deal_seeker, premium)
            m = churn.hazard_multiplier(
                pop.satisfaction, pop.commitment, pop.sentiment, switching_cost, felt_price,
                pop.price_sensitivity, exposure * self.per_step.lapse_mean, ch.satisfaction_effect,
                ch.commitment_effect, ch.sentiment_effect, ch.switching_cost_effect,
                ch.price_effect, ch.contagion, ch.dissatisfied_effect)
            return churn.decide(mask, churn.leave_probability(pop.base_churn, m * lever, self.dt),
                                u_churn)

        eligible = active & ch.enabled
        left = leaving(eligible, pop.switching_cost)
        trapped = np.zeros(pop.n, dtype=bool)
        locked = eligible & (pop.switching_cost > 0)
        if locked.any():
            trapped = leaving(locked, 0.0) & ~left
            pop.grievance |= trapped
            pop.sentiment = np.where(trapped, np.maximum(pop.sentiment - ch.trap_resentment, -1.0),
                                     pop.sentiment).astype(np.float32)
        gone = np.flatnonzero(left)
        fees = self._sums(pop.exit_fee[gone], gone)
        super()._end_contracts(left)
        row.update(at_risk=self._counts(active), churned=self._counts(left),
                   trapped=self._counts(trapped), exit_fees=fees)
        return Leaving(left, trapped)

    def _adopt(self, actions: Actions, row: dict) -> Joining:
        c, pop, a = self.cfg, self.population, self.cfg.adoption
        ch = c.market.churn
        back = np.flatnonzero(pop.status == LAPSED)
        back_p = churn.return_probability(
            ch.winback_rate + _at(self._effect(actions, "return_lift"), back),
            np.exp(ch.sentiment_effect * pop.sentiment[back]), self.dt)
        share = self.network.neighbour_share((pop.status == ACTIVE) & (pop.satisfaction >= 0))
        u_adopt = self._take("adoption")
        lift = self._effect(actions, "adoption_lift")
        cand = np.flatnonzero(pop.status == PROSPECT)
        sentiment = pop.sentiment[cand]
        reputation = (a.reputation_effect * self._firm_values("reputation")).astype(sentiment.dtype)
        p_adopt = adoption.bass_step_probability(share[cand], a.innovation + _at(lift, cand),
                                                 a.imitation, self.dt)
        p_adopt = adoption.scale_probability(
            p_adopt, np.exp(a.sentiment_effect * sentiment + reputation[self.rep[cand]]))
        adopted = np.zeros(pop.n, dtype=bool)
        adopted[cand] = u_adopt[cand] < p_adopt
        returned = np.zeros(pop.n, dtype=bool)
        returned[back] = u_adopt[back] < back_p
        row.update(acquired=self._counts(adopted), won_back=self._counts(returned))
        return Joining(adopted, returned)

    def _enter(self, row: dict) -> None:
        due = self.per_step.in_market
        now = int(due[min(self.steps, due.size - 1)])
        self.population.status.reshape(self.R, -1)[:, self.in_market:now] = PROSPECT
        row["entered"] = np.full(self.R, now - self.in_market)
        self.in_market = now
        for m in self.replicates:
            m.in_market = now

    def _buy_and_pay(self, leaving: Leaving, joining: Joining, actions: Actions,
                     row: dict) -> np.ndarray:
        c, pop = self.cfg, self.population
        active = pop.status == ACTIVE
        np.add(pop.tenure, active, out=pop.tenure)
        pop.commitment = experience.commitment_update(
            active, pop.commitment, pop.satisfaction, rate=c.market.experience.commitment_rate,
            dt=self.dt)
        u_pay = self._take("spending")
        disc = metrics.discount_factor(self.steps, c.sim.discount_rate, self.dt)
        from .model import _settle
        from functools import partial
        settle = partial(_settle, default_prob=c.market.traits.default_prob,
                         margin=c.firm.margin, discount_factor=disc)
        books = (pop.late_payments, pop.revenue, pop.margin_discounted)
        amount, late, default = self._subscribe(active, leaving, joining, actions, u_pay, books,
                                                settle)
        sales = self._sums(amount)
        bad = np.flatnonzero(default)
        late_at = np.flatnonzero(late)
        col = c.firm.collection
        held = pop.value[late_at] * self._price_paid(late_at) * (col.days_late / units.DAYS_PER_YEAR)
        row.update(
            late_payments=self._counts(late), defaults=self._counts(default), sales=sales,
            revenue=sales + row["exit_fees"], cost_goods=sales * (1.0 - c.firm.margin),
            cost_bad_debt=self._sums(amount[bad], bad),
            cost_late_payments=(self._counts_at(late_at) * col.cost_per_late_payment
                                + self._sums(held, late_at) * c.sim.discount_rate
                                * col.days_late / units.DAYS_PER_YEAR),
            discount_factor=np.full(self.R, disc))
        return amount

    def _book(self, tab: dict, rows: list[dict]) -> None:
        pop = self.population
        tab["cost_fixed"] = np.full(self.R, self.per_step.fixed_cost)
        idx = np.flatnonzero(pop.status == ACTIVE)
        equity = self._sums(self._equity_each(idx), idx)
        tab["customer_equity"] = equity
        active = pop.status == ACTIVE
        status = pop.status.reshape(self.R, -1)
        counts = {s: np.count_nonzero(status == s, axis=1) for s in range(len(STATUS_NAMES))}
        n_active = counts[ACTIVE]

        def mean_over(x):
            picked = np.compress(active, x)
            return [float(v) if k else 0.0 for v, k in zip(self._sums_mean(picked, idx), n_active)]

        sat_mean, com_mean = mean_over(pop.satisfaction), mean_over(pop.commitment)
        promoters = self._counts((pop.satisfaction >= metrics.PROMOTER_SAT) & active)
        detractors = self._counts((pop.satisfaction <= metrics.DETRACTOR_SAT) & active)
        sentiment = pop.sentiment.reshape(self.R, -1)[:, :self.in_market].mean(axis=1, dtype=np.float64)
        names = ("n_prospect", "n_active", "n_lapsed", "n_terminated", "n_outside")
        for r, (m, row) in enumerate(zip(self.replicates, rows, strict=True)):
            for key, values in tab.items():
                row[key] = values[r].item()
            state = {name: int(counts[s][r]) for s, name in enumerate(names)}
            k = int(n_active[r])
            state.update(satisfaction_mean=sat_mean[r], commitment_mean=com_mean[r],
                         sentiment_mean=float(sentiment[r]),
                         nps=100.0 * (int(promoters[r]) - int(detractors[r])) / k if k else 0.0)
            m._finish_row(row, state)
            m._stop_at_horizon()

    def _sums_mean(self, picked: np.ndarray, idx: np.ndarray) -> list:
        cut = np.searchsorted(idx, self.starts)
        return [picked[lo:hi].mean(dtype=np.float64) if hi > lo else 0.0
                for lo, hi in zip(cut[:-1], cut[1:], strict=True)]
