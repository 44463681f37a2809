"""Published regularities, measured on small markets (docs/calibration_targets.md).

Each test runs the measure of ``experiments/calibration_targets.py`` (the same code that
writes the doc's table on the default market) on a small market with fixed seeds and checks
the value lies in the target's band. The bands come from the source's number and its own
uncertainty (stated with each target in the script and the doc). Each test also checks its
own standard error is small next to the band (at most a sixth of its width, so the band spans
at least +-3 s.e. and a value in it is not there by noise; a quarter for the social
multiplier, whose published value itself comes from only ~6,000 customers), so none can pass
by measuring too little to tell.

Small markets: a larger initial customer share (0.5) gives more customers, and so more churn
events, per simulated person; it changes no mechanism.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "experiments" / "calibration_targets.py"
_spec = importlib.util.spec_from_file_location("calibration_targets", _PATH)
ct = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = ct   # dataclasses look their module up
_spec.loader.exec_module(ct)

TARGET = {t.key: t for t in ct.TARGETS}
SMALL = ["market.n_people=4000", "market.initial_customer_share=0.5"]


def check(key: str, m, se_share: float = 6.0) -> None:
    lo, hi = TARGET[key].band
    assert m.se <= (hi - lo) / se_share, \
        f"{key}: s.e. {m.se:.3g} too large for the band [{lo}, {hi}]"
    assert lo <= m.value <= hi, f"{key}: {m.value:.3f} outside [{lo}, {hi}] ({m.detail})"


@pytest.fixture(scope="module")
def market():
    # Two seeds: the word-of-mouth share's s.e. comes from their spread.
    return ct.default_market(SMALL, [1, 2], years=2.0)


def test_tenure_by_satisfaction(market):
    check("tenure_satisfied", market["tenure_satisfied"])
    check("tenure_dissatisfied", market["tenure_dissatisfied"])
    assert market["tenure_satisfied"].value > 4 * market["tenure_dissatisfied"].value


def test_negative_wom_share_and_retention(market):
    check("negative_wom_share", market["negative_wom_share"])
    check("annual_retention", market["annual_retention"])


def test_contagion_hazard_ratio():
    check("contagion_hr", ct.contagion_hazard_ratio(SMALL, [1, 2], years=2.0))


def test_loyalty_and_switching_cost_effects():
    check("loyalty_r", ct.retention_effect(SMALL, [1], "loyalty")[1])
    check("switching_cost_r", ct.retention_effect(SMALL, [1], "switching_cost", years=2.0)[1])


def test_contact_backfires():
    # Among those the offer annoys: annoy_share=1 makes every contacted customer who does not
    # take the offer annoyed (the effect on the annoyed at the default annoy_hazard; how many
    # are annoyed is the catalogue's annoy_share). Three months are short: 30,000 people.
    _, annoyed = ct.contact_backfire(
        ["market.n_people=30000", "market.initial_customer_share=0.5"], [1], annoy_share=1.0)
    check("backfire_annoyed", annoyed)


def test_social_multiplier():
    check("social_multiplier", ct.social_multiplier(
        ["market.n_people=8000", "market.initial_customer_share=0.5"], [1, 2, 3, 4]),
        se_share=4.0)
