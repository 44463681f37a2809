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

import dataclasses
import itertools
import operator
from dataclasses import fields

import numpy as np
import scipy.sparse as sp

from . import metrics
from .actions import Actions
from .config import CRMConfig
from .errors import ConfigError
from .firm import Firm
from .model import CRMModel, ServiceDraws
from .network import Network
from .parallel import Workers
from .population import Population


def stackable(cfg: CRMConfig) -> bool:
    """Whether replicates of ``cfg`` can step together (else they run one by one)."""
    return (cfg.market.purchase.kind != "noncontractual" and not cfg.sim.record_events
            and cfg.network.kind != "complete")


def _stack_layers(layers: list) -> sp.csr_array | None:
    """One CSR matrix with ``layers`` on its diagonal, each block's entries in their order."""
    if layers[0] is None:
        return None
    rows = np.cumsum([0] + [a.shape[0] for a in layers])
    entries = np.cumsum([0] + [a.nnz for a in layers])
    indptr = np.concatenate([a.indptr[:-1] + off for a, off in zip(layers, entries, strict=False)]
                            + [entries[-1:]])
    return sp.csr_array((np.concatenate([a.data for a in layers]),
                         np.concatenate([a.indices + off for a, off in zip(layers, rows, strict=False)])
                         .astype(np.int32), indptr.astype(np.int32)), shape=(rows[-1], rows[-1]))


def stack_networks(nets: list[Network]) -> Network:
    """The networks of the replicates as one network: each replicate's people know only each
    other (one block-diagonal matrix per layer)."""
    return Network(n=sum(net.n for net in nets), kind=nets[0].kind,
                   strong=_stack_layers([net.strong for net in nets]),
                   weak=_stack_layers([net.weak for net in nets]),
                   degree=np.concatenate([net.degree for net in nets]))


class _Firms:
    """The replicates' firms as one: ``quality``, ``training`` and ``reputation`` one number
    per replicate; the firm's knowledge of each person one stacked array, which ``Firm.learn``
    updates as it does one firm's."""

    learn = Firm.learn

    def __init__(self, firms: list[Firm]) -> None:
        self.firms = firms
        self.knowledge_sd = np.concatenate([f.knowledge_sd for f in firms])
        self.learning, self.floor = firms[0].learning, firms[0].floor

    def __getattr__(self, name: str) -> np.ndarray:
        if name not in ("quality", "training", "reputation"):
            raise AttributeError(name)
        return np.array([getattr(f, name) for f in self.__dict__["firms"]])


class StackedModel(CRMModel):
    """R replicates of one checked config stepped together (``configs``: its typed config
    with each seed, as ``validation.reseeded`` makes them). ``replicates`` are the R
    ``CRMModel``s, whose tables (``timeseries``, ``levers_table``, ``population``) are those
    of runs on their own once ``finish`` is called after the last step."""

    def __init__(self, configs: list[CRMConfig]) -> None:   # no Mesa model of its own
        _check(configs)
        self.replicates = reps = [CRMModel(c) for c in configs]
        first = reps[0]
        self.cfg, self.dt, self.noncontractual = first.cfg, first.dt, False
        self.R, self.n = len(reps), first.population.n
        self.rep = np.repeat(np.arange(self.R), self.n)       # each person's replicate
        self.starts = np.arange(self.R + 1) * self.n           # where each block starts
        self._fields = [f.name for f in fields(Population)
                        if getattr(first.population, f.name) is not None]
        self.population = Population(**{
            name: np.concatenate([getattr(m.population, name) for m in reps])
            for name in self._fields})
        self.network = stack_networks([m.network for m in reps])
        self.firm = _Firms([m.firm for m in reps])
        self.per_step = first.per_step._replace(
            late_pay_prob=np.concatenate([m.per_step.late_pay_prob for m in reps]),
            late_pay_prob_half=np.concatenate([m.per_step.late_pay_prob_half for m in reps]))
        self.workers = Workers(1)
        self._in_market = first.in_market
        self.steps = 0
        self.running = True
        self._get = operator.attrgetter(*self._fields)
        self._views: dict[str, tuple] = {}
        self._scatter()

    @property
    def in_market(self) -> int:
        return self._in_market

    @in_market.setter
    def in_market(self, now: int) -> None:
        self._in_market = now
        for m in self.replicates:
            m.in_market = now

    # -- the step ------------------------------------------------------------------------------
    def step(self) -> None:
        """Each replicate's policy acts on its own people; then, if they chose the same kinds
        of effects, all respond at once (``CRMModel._respond`` on the stacked arrays), else
        each on its own."""
        self.steps += 1
        for m in self.replicates:
            m.steps += 1
            if "time" in vars(m):     # Mesa >= 3.4 keeps time beside steps
                m.time += 1
        self._scatter()
        self._rows = [m._new_row() for m in self.replicates]
        decided = [m._policy_acts(row) for m, row in zip(self.replicates, self._rows, strict=True)]
        self._gather()
        actions = _merge([a for a, _ in decided], self.population.n)
        if actions is None:
            for m, (a, terminated), row in zip(self.replicates, decided, self._rows, strict=True):
                m._respond(a, terminated, m._contagion_ahead(), row)
            self._gather()
            self._in_market = self.replicates[0].in_market
        else:
            self._respond(actions, np.zeros(0, dtype=bool), self._contagion_ahead(), {})
        self.running = any(m.running for m in self.replicates)

    def finish(self) -> None:
        """After the last step: every replicate's arrays are its block of the stacked ones."""
        self._scatter()

    def _finish_row(self, row: dict, state: dict | None = None) -> None:
        """Each replicate's row: its numbers of the step, then its own ``_finish_row``."""
        row.update(state if state is not None else self._state_means())
        keys = list(row)
        columns = [np.broadcast_to(value, self.R).tolist() for value in row.values()]
        for m, own, values in zip(self.replicates, self._rows, zip(*columns, strict=True), strict=True):
            own.update(zip(keys, values, strict=True))
            m._finish_row(own, {})     # its state is in the row already

    def _stop_at_horizon(self) -> None:
        for m in self.replicates:
            m._stop_at_horizon()

    # -- the blocks: each replicate's arrays are views of the stacked ones -------------------
    def _holders(self):
        """(the stacked holder, each replicate's holder, name) of every per-person array."""
        reps = self.replicates
        for name in self._fields:
            yield self.population, [m.population for m in reps], name
        yield self.firm, [m.firm for m in reps], "knowledge_sd"

    def _scatter(self) -> None:
        """Point every replicate's arrays at its block of the stacked ones that are new."""
        changed = False
        for whole, parts, name in self._holders():
            array = getattr(whole, name)
            if self._views.get(name, (None,))[0] is not array:
                views = [array[lo:hi] for lo, hi in zip(self.starts[:-1], self.starts[1:], strict=True)]
                for part, view in zip(parts, views, strict=True):
                    setattr(part, name, view)
                self._views[name] = (array, views)
                changed = True
        if changed:     # what each replicate's arrays are now, for _gather
            self._mine = [self._arrays(m) for m in self.replicates]

    def _arrays(self, m: CRMModel) -> tuple:
        return (*self._get(m.population), m.firm.knowledge_sd)

    def _gather(self) -> None:
        """A replicate's phase may replace one of its arrays (a policy's lasting effects, the
        firm learning): the stacked array becomes a new one made of the blocks, so that an
        earlier view of the old array keeps what it held, as in a run on its own."""
        now = [self._arrays(m) for m in self.replicates]
        if any(map(operator.is_not, itertools.chain(*now), itertools.chain(*self._mine))):
            for i, (whole, _, name) in enumerate(self._holders()):
                arrays = [a[i] for a in now]
                if any(map(operator.is_not, arrays, (a[i] for a in self._mine))):
                    setattr(whole, name, np.concatenate(arrays))
            self._scatter()

    # -- one number per replicate (CRMModel's hooks) ------------------------------------------
    @property
    def people_per_market(self) -> int:
        return self.n

    def _take(self, stream: str):
        """The replicates' draws of ``stream``, side by side (each replicate's its own)."""
        draws = [m.draws[stream].take() for m in self.replicates]
        if stream != "service":
            return np.concatenate(draws, axis=-1)
        rounds = []
        for j in range(max(len(u.further) for u in draws)):
            parts = [(u.further[j], r * self.n) for r, u in enumerate(draws) if len(u.further) > j]
            rounds.append((np.concatenate([drawn + off for (drawn, _, _), off in parts]),
                           np.concatenate([z for (_, z, _), _ in parts]),
                           np.concatenate([u for (_, _, u), _ in parts], axis=1)))
        first = np.concatenate([u.first for u in draws], axis=1)
        return ServiceDraws(*first, np.concatenate([u.z for u in draws]), rounds, first)

    def _count(self, mask: np.ndarray) -> np.ndarray:
        return np.count_nonzero(mask.reshape(self.R, -1), axis=1)

    def _count_at(self, idx: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        return np.bincount((idx if mask is None else idx[mask]) // self.n, minlength=self.R)

    def _total(self, values: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Each replicate's sum, added as a run on its own adds it (numpy's pairwise sums
        depend on where they start and end): as float64 (int64), as ``.item()`` of that sum
        would be."""
        kind = np.float64 if values.dtype.kind == "f" else np.int64
        if idx is None:
            return values.reshape(self.R, -1).sum(axis=1).astype(kind)
        cut = np.searchsorted(idx, self.starts)
        return np.array([values[lo:hi].sum() for lo, hi in zip(cut[:-1], cut[1:], strict=True)],
                        dtype=kind)

    def _each(self, value, idx: np.ndarray | None = None, like: np.ndarray | None = None):
        """The replicates' ``value`` for each person: cast first to the dtype of the array it
        meets, as numpy casts a Python number to it."""
        value = np.asarray(value)
        if like is not None:
            value = value.astype(like.dtype)
        return value[self.rep if idx is None else self.rep[idx]]

    def _update_firm(self, name: str, rule, *per_market) -> None:
        values = [np.broadcast_to(v, self.R).tolist() for v in per_market]
        for r, f in enumerate(self.firm.firms):
            setattr(f, name, rule(getattr(f, name), *(v[r] for v in values)))

    def _markets(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(self.R, -1)

    def _market_mean(self, x: np.ndarray) -> np.ndarray:
        return self._markets(x)[:, :self.in_market].mean(axis=1, dtype=np.float64)

    def _mean_over(self, x: np.ndarray, mask: np.ndarray) -> list[float]:
        """``metrics.mean_over`` of each replicate (over the same values, in the same order)."""
        idx = np.flatnonzero(mask)
        picked = np.compress(mask, x)
        cut = np.searchsorted(idx, self.starts)
        return [float(picked[lo:hi].mean(dtype=np.float64)) if hi > lo else 0.0
                for lo, hi in zip(cut[:-1], cut[1:], strict=True)]

    def _nps(self, satisfaction: np.ndarray, active: np.ndarray) -> list[float]:
        counts = [self._count(active).tolist(),
                  self._count((satisfaction >= metrics.PROMOTER_SAT) & active).tolist(),
                  self._count((satisfaction <= metrics.DETRACTOR_SAT) & active).tolist()]
        return [metrics.net_promoter(p, d, n) for n, p, d in zip(*counts, strict=True)]


def _check(configs: list[CRMConfig]) -> None:
    allowed = ("one or more typed configs (validation.reseeded of one checked config) that "
               "differ only in their seed, and that stackable() accepts")
    if not configs or not all(isinstance(c, CRMConfig) for c in configs):
        raise ConfigError("configs", configs, allowed)
    if not stackable(configs[0]):
        raise ConfigError("configs", "a config stackable() refuses", allowed)
    first = dataclasses.replace(configs[0], seed=0)
    if any(dataclasses.replace(c, seed=0) != first for c in configs[1:]):
        raise ConfigError("configs", "configs that differ beyond their seed", allowed)


def _merge(per_rep: list[Actions], n: int) -> Actions | None:
    """The replicates' per-person effects side by side, or None when some replicate allocated
    an effect another did not, or of another type (a number and an array, or two types of
    array, meet the people's arrays differently)."""
    kinds = {name: (a.dtype, a.shape) for name, a in per_rep[0].person.items()}
    if any({name: (a.dtype, a.shape) for name, a in other.person.items()} != kinds
           for other in per_rep[1:]):
        return None
    out = Actions(n)
    for name in kinds:
        out.person[name] = np.concatenate([a.person[name] for a in per_rep])
    return out
