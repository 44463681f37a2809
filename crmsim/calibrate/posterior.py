"""Stage B's optional posterior by simulation-based inference (``--posterior sbi``).

Neural posterior estimation (NPE, the ``sbi`` package: Greenberg, Nonnenmacher & Macke 2019)
over ``simulate.STAGE_B_KEYS``, in place of stage B's Optuna search:

- prior: log-uniform within ``spread``x of stage A's value, the range the Optuna search of
  stage B covers (the parameters are learnt on the log scale);
- simulator: the full model at a small size on fixed seeds (common random numbers, as every
  stage-B candidate), whose moments (``simulate.moments_of``) are averaged over the seeds; to
  them is added Gaussian noise with each moment's variance (``simulate.variance``: the data's
  binomial variance plus the simulation's), the sampling model behind stage B's distance. Each
  simulation gives ``NOISE_DRAWS`` noisy copies for training, which costs no extra simulation;
- posterior: sampled at the observed moments; its 2.5, 50 and 97.5% quantiles are the value
  and the 95% interval (method ``sbi-npe``).

The extra is optional (``pip install "crmsim[calibrate-sbi]"``: sbi and torch); without it,
``require`` stops with the install command before anything is read or run.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..replicates import Replicates
from . import simulate as sim

INSTALL = 'pip install "crmsim[calibrate-sbi]"'
METHOD = "sbi-npe"
# Noisy copies of each simulation's moments used for training (draws of the data's noise).
NOISE_DRAWS = 10
# Posterior samples the quantiles and the correlation are read from.
SAMPLES = 4000
# Fewest simulations NPE is trained on.
MIN_SIMULATIONS = 10
# A quantile this close to a bound of the prior (share of the log range) is flagged.
EDGE = 0.02


def require() -> None:
    """Stop with the install command when the calibrate-sbi extra is missing."""
    try:
        import sbi.inference  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        raise ConfigError("--posterior", "sbi", "an installed calibrate-sbi extra (the sbi "
                          f"package and torch): {INSTALL}", "Without it, stage B fits by "
                          "simulated method of moments (--stage-b without --posterior).") from None


@dataclass
class Posterior:
    """Stage B's posterior: samples by key (natural units) and how they were obtained."""

    keys: tuple[str, ...]
    samples: np.ndarray                 # SAMPLES x len(keys)
    prior_low: dict[str, float]
    prior_high: dict[str, float]
    simulations: int
    seeds: list[int]
    n_people: int
    seconds: float
    seconds_simulating: float
    closest: float                      # smallest stage-B distance over the simulations
    n_moments: int
    method: str = METHOD

    def quantiles(self, q: float) -> dict[str, float]:
        return {k: float(np.quantile(self.samples[:, i], q)) for i, k in enumerate(self.keys)}

    def correlation(self) -> np.ndarray:
        return np.corrcoef(self.samples.T)

    def at_edge(self) -> list[str]:
        """Keys whose 95% interval reaches within EDGE of a bound of the prior (on the log
        scale): the prior, not the data, cuts the posterior there."""
        out = []
        lo, hi = self.quantiles(0.025), self.quantiles(0.975)
        for k in self.keys:
            a, b = np.log(self.prior_low[k]), np.log(self.prior_high[k])
            if np.log(lo[k]) - a < EDGE * (b - a) or b - np.log(hi[k]) < EDGE * (b - a):
                out.append(k)
        return out


class _NoTracker:
    """sbi's tracker protocol, recording nothing (sbi's default writes ./sbi-logs)."""

    log_dir = None

    def log_metric(self, name, value, step=None):
        pass

    def log_metrics(self, metrics, step=None):
        pass

    def log_params(self, params):
        pass

    def add_figure(self, name, figure, step=None):
        pass

    def flush(self):
        pass


def npe(target: sim.Target, start: dict, overrides: list[str], simulations: int, seeds: list[int],
        n_start: int = 1000, seed: int = 0, spread: float = 4.0,
        runner: Replicates | None = None) -> Posterior:
    """Neural posterior estimation of ``STAGE_B_KEYS[target.setting]`` from ``simulations``
    draws of the prior, each simulated on ``seeds`` (the same for every draw) by ``runner``'s
    worker processes (None: in this process)."""
    import torch
    from sbi.inference import NPE
    from sbi.utils import BoxUniform

    keys = sim.STAGE_B_KEYS[target.setting]
    base = sim.base_config(target, overrides, n_start)
    sd = np.sqrt(sim.variance(target, sim.simulated_customers(base, seeds)))
    low = np.log([start[k] / spread for k in keys])
    high = np.log([start[k] * spread for k in keys])
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    prior = BoxUniform(low=torch.tensor(low, dtype=torch.float32),
                       high=torch.tensor(high, dtype=torch.float32))
    theta = prior.sample((simulations,)).numpy().astype(float)
    means = np.array([sim.simulate_moments(target, dict(zip(keys, np.exp(z), strict=True)), base,
                                           seeds, runner).mean(axis=0) for z in theta])
    simulating = time.perf_counter() - t0
    closest = min(float(((m - target.observed) ** 2 / sd**2).sum()) for m in means)
    x = np.repeat(means, NOISE_DRAWS, axis=0)
    x += sd * rng.standard_normal(x.shape)
    inference = NPE(prior=prior, show_progress_bars=False, tracker=_NoTracker())
    with contextlib.redirect_stdout(io.StringIO()):      # sbi prints its convergence
        inference.append_simulations(torch.tensor(np.repeat(theta, NOISE_DRAWS, axis=0), dtype=torch.float32),
                                     torch.tensor(x, dtype=torch.float32)).train()
        posterior = inference.build_posterior()
        z = posterior.sample((SAMPLES,), x=torch.tensor(target.observed, dtype=torch.float32),
                             show_progress_bars=False).numpy().astype(float)
    return Posterior(keys, np.exp(z), dict(zip(keys, np.exp(low), strict=True)),
                     dict(zip(keys, np.exp(high), strict=True)), simulations, list(seeds),
                     int(base.market.n_people), time.perf_counter() - t0, simulating, closest,
                     int(target.observed.size))
