import pytest

import crmsim


@pytest.fixture
def small():
    """A small, quick config: ``small("policy=transactional", ...)``."""

    def make(*overrides: str):
        return crmsim.load_config(["market.n_people=1500", "sim.steps=30", *overrides])

    return make


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path, monkeypatch):
    """Runs started by tests never write into the repository's results/."""
    monkeypatch.setenv("CRMSIM_RESULTS", str(tmp_path / "results"))
