"""A catalogue of bad input: each case must stop before anything runs.

For every case the API (`crmsim.load_config`) raises a `ConfigError` whose key is the offending
key and whose one-paragraph message shows the value and what is allowed; the CLI prints that
paragraph (no traceback), exits with 2 and writes no file, neither under the results root nor in
the working directory. `tests/test_config.py` checks the basic messages; this file covers the
breadth of what people mistype, and that the CLI and the API agree.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import crmsim
from crmsim import ConfigError
from crmsim.cli import EXIT_BAD_INPUT, main

SMALL = ["market.n_people=300", "sim.steps=2"]


@dataclass(frozen=True)
class Bad:
    overrides: tuple[str, ...]
    key: str
    shown: str | tuple[str, ...]     # how the value must appear in the message (any of these)
    allowed: str | tuple[str, ...]   # a phrase of what the message allows (any of these)
    edges: bytes | None = None   # contents of an edge-list file, written to {edges}


def case(id_: str, overrides: str, key: str, shown, allowed, **kw):
    return pytest.param(Bad(tuple(overrides.split()), key, shown, allowed, **kw), id=id_)


EDGES = "network=edgelist network.path={edges}"
EDGE_FILE = "an existing text file"

CASES = [
    # -- wrong types
    case("int-word", "market.n_people=many", "market.n_people", "'many'", "whole number from 2"),
    case("int-fraction", "market.n_people=2.5", "market.n_people", "2.5", "whole number"),
    case("int-bool", "sim.steps=true", "sim.steps", "True", "whole number >= 1"),
    case("int-exponent", "sim.steps=1e3", "sim.steps", "1000.0", "whole number"),
    case("float-word", "wom.tell_positive=many", "wom.tell_positive", "'many'", "[0, 100000]"),
    case("float-garbled", "wom.viral_prob=.5.5", "wom.viral_prob", "'.5.5'", "[0, 1]"),
    case("float-null", "firm.quality=null", "firm.quality", "None", "[0, 1]"),
    case("bool-word", "policy.tactics.ads.enabled=yes", "policy.tactics.ads.enabled", "'yes'",
         "true or false"),
    case("section-as-value", "market.spend=3", "market.spend", "3", "section with the keys mean"),
    case("group-as-number", "sim=3", "sim", "'3'", "one of monthly, weekly"),
    case("group-as-null", "market=null", "market", "'null'", "one of default"),
    case("group-as-mapping", "network={kind:random,degree:4}", "network.degree",
         "'{kind:random,degree:4}'", "schema"),
    case("tactic-as-number", "policy.tactics.ads=3", "policy.tactics.ads", "3", "mapping"),
    case("no-equals", "market.n_people", "override", "'market.n_people'", "key=value"),
    case("no-key", "=5", "override", "'=5'", "key=value"),
    # -- probabilities and rates out of range
    case("prob-negative", "wom.recommend_prob=-0.01", "wom.recommend_prob", "-0.01", "[0, 1]"),
    case("prob-above-one", "firm.service.rude_prob=2", "firm.service.rude_prob", "2.0", "[0, 1]"),
    case("prob-just-above-one", "market.traits.default_prob=1.0001",
         "market.traits.default_prob", "1.0001", "[0, 1]"),
    case("rate-above-daily", "market.traits.late_pay_rate=400", "market.traits.late_pay_rate",
         "400.0", "[0, 365]"),
    case("half-life-zero", "wom.sentiment_half_life_days=0", "wom.sentiment_half_life_days",
         "0.0", "> 0"),
    case("old-per-step-key", "firm.service.encounter_prob=0.2", "firm.service.encounter_prob",
         "0.2", "encounter_rate"),
    case("open-upper-bound", "market.spend.top20_share=1", "market.spend.top20_share", "1.0",
         "[0.2, 1)"),
    case("quality-above-one", "firm.quality=1.01", "firm.quality", "1.01", "[0, 1]"),
    case("reputation-below-minus-one", "firm.reputation=-2", "firm.reputation", "-2.0", "[-1, 1]"),
    case("negative-discount-rate", "sim.discount_rate=-0.05", "sim.discount_rate", "-0.05", ">= 0"),
    case("negative-bass-q", "adoption.imitation=-0.1", "adoption.imitation", "-0.1", ">= 0"),
    case("step-longer-than-year", "sim.period_days=400", "sim.period_days", "400.0", "(0, 365]"),
    case("tactic-share-above-one", "policy.tactics.ads.share=1.5", "policy.tactics.ads.share",
         "1.5", "[0, 1]"),
    case("negative-budget", "firm.crm_budget=-1", "firm.crm_budget", "-1.0", "[0, 1e+15]"),
    case("huge-spend", "market.spend.mean=1e13", "market.spend.mean", "10000000000000.0", "1e+12"),
    case("maturity-above-one", "policy=gartner policy.params.maturity.vision=2",
         "policy.params.maturity.vision", "2", "[0, 1]"),
    case("review-days-zero", "policy=qci policy.params.review_days=0",
         "policy.params.review_days", "0", "[1, 3650]"),
    case("tactic-cost-zero", "policy.tactics.ads.cost_per_exposure=0",
         "policy.tactics.ads.cost_per_exposure", "0", "> 0"),
    case("tactic-cost-negative", "policy.tactics.email.cost_per_contact=-1",
         "policy.tactics.email.cost_per_contact", "-1", "> 0"),
    case("tactic-cadence-negative", "policy.tactics.email.cadence_days=-5",
         "policy.tactics.email.cadence_days", "-5", "[0, 3650]"),
    case("policy-param-out-of-range", "policy=idic policy.params.target_share=1.5",
         "policy.params.target_share", "1.5", "[0, 1]"),
    # -- zero or negative counts
    case("steps-zero", "sim.steps=0", "sim.steps", "0", "whole number >= 1"),
    case("steps-negative", "sim.steps=-1", "sim.steps", "-1", "whole number >= 1"),
    case("one-person", "market.n_people=1", "market.n_people", "1", "from 2"),
    case("too-many-people", "market.n_people=3000000000", "market.n_people", "3000000000",
         "to 2147483647"),
    case("needs-dims-zero", "market.needs.dims=0", "market.needs.dims", "0", "whole number >= 1"),
    case("seed-negative", "seed=-1", "seed", "-1", "whole number >= 0"),
    case("mean-degree-zero", "network.mean_degree=0", "network.mean_degree", "0.0", "> 0"),
    # -- NaN and infinity
    case("nan", "market.spend.mean=nan", "market.spend.mean", "nan", "(0, 1e+12]"),
    case("inf", "market.spend.mean=inf", "market.spend.mean", "inf", "(0, 1e+12]"),
    case("minus-inf", "market.spend.mean=-inf", "market.spend.mean", "-inf", "(0, 1e+12]"),
    case("nan-budget", "firm.crm_budget=nan", "firm.crm_budget", "nan", "[0, 1e+15]"),
    case("inf-rate", "market.churn.alpha=inf", "market.churn.alpha", "inf", "> 0"),
    case("nan-tactic-param", "policy.tactics.ads.max_lift=nan", "policy.tactics.ads.max_lift", "nan",
         ">= 0"),
    case("inf-tactic-param", "policy.tactics.ads.max_lift=inf", "policy.tactics.ads.max_lift", "inf",
         ">= 0"),
    # -- unknown names
    case("unknown-policy", "policy=nosuch", "policy", "'nosuch'", "transactional"),
    case("unknown-policy-name", "policy.name=nosuch", "policy.name", "'nosuch'", "transactional"),
    case("unknown-network-kind", "network.kind=hexagonal", "network.kind", "'hexagonal'",
         "small_world"),
    case("unknown-network", "network=hexagonal", "network", "'hexagonal'", "scale_free"),
    case("unknown-experiment", "experiment=nosuch", "experiment", "'nosuch'", "compare_policies"),
    case("unknown-launcher", "launcher=nosuch", "launcher", "'nosuch'", "submitit_local"),
    case("unknown-option-in-list", "sim=[weekly,nosuch]", "sim", "'nosuch'", "one of"),
    case("unknown-validation", "+validation=nosuch", "validation", "'nosuch'", "one of bass"),
    case("optional-group-without-plus", "validation=bass", "validation", "'bass'", "+validation="),
    case("unknown-search", "hparams_search=nosuch", "hparams_search", "'nosuch'", "one of"),
    case("unknown-tactic", "+policy.tactics.nosuch={enabled:true}", "policy.tactics.nosuch",
         "'nosuch'", "ads"),
    # -- misspelled keys: every key, even one added with `+`, is checked against the schema
    case("typo-top-level", "+typo=1", "typo", "'1'", "schema"),
    case("typo-top-level-force-add", "++typo=1", "typo", "'1'", "schema"),
    case("typo-nested", "+sim.stpes=5", "sim.stpes", "'5'", "schema"),
    case("typo-nested-no-plus", "sim.stpes=5", "sim.stpes", "'5'", "schema"),
    case("typo-deep", "+market.spend.meen=5", "market.spend.meen", "'5'", "schema"),
    case("typo-tactic-param", "policy.tactics.ads.lfit=1", "policy.tactics.ads.lfit", "'1'",
         "schema"),
    case("typo-tactic-param-plus", "+policy.tactics.ads.lfit=1", "policy.tactics.ads.lfit", "1",
         "lift"),
    case("plus-on-existing-key", "+seed=3", "seed", "'3'", "without '+'"),
    case("policy-param-typo", "+policy.params.foo=1", "policy.params.foo", "1", "none"),
    case("termination-param-typo", "+policy.termination.params.max_shar=1",
         "policy.termination.params.max_shar", "1", "max_share_per_year"),
    case("termination-unknown-method", "policy.termination.method=refund",
         "policy.termination.method", "'refund'", "price_increase"),
    case("termination-unknown-rule", "policy.termination.rules=[late_payers,grumpy]",
         "policy.termination.rules", "'grumpy'", "serial_complainers"),
    case("termination-rules-not-a-list", "policy.termination.rules=late_payers",
         "policy.termination.rules", "'late_payers'", "list"),
    case("fallback-tactic-removed", "~policy.tactics.ads", "policy.tactics.ads", "None", "ads"),
    # -- relations between keys
    case("mean-degree-equals-n", "network.mean_degree=300 market.n_people=300",
         "network.mean_degree", "300.0", "299"),
    case("mean-degree-above-n-random", "network=random network.mean_degree=500 market.n_people=300",
         "network.mean_degree", "500.0", "299"),
    case("weak-degree-above-n", "network.weak_degree=300 market.n_people=300",
         "network.weak_degree", "300.0", "below market.n_people (300)"),
    # -- edge lists
    case("edgelist-no-path", "network=edgelist", "network.path", ("'???'", "None"),
         ("a value", "edge-list file")),
    case("edgelist-null-path", "network=edgelist network.path=null", "network.path", "None",
         "edge-list file"),
    case("edgelist-missing", "network=edgelist network.path={missing}", "network.path", "missing",
         EDGE_FILE),
    case("edgelist-directory", "network=edgelist network.path={dir}", "network.path", "input",
         EDGE_FILE),
    case("edgelist-empty", EDGES, "network.path", "edges.txt", EDGE_FILE, edges=b""),
    case("edgelist-comments-only", EDGES, "network.path", "edges.txt", EDGE_FILE,
         edges=b"# nothing here\n\n"),
    case("edgelist-header-only", EDGES, "network.path", "edges.txt", EDGE_FILE,
         edges=b"source,target\n"),
    case("edgelist-non-numeric", EDGES, "network.path", "edges.txt", "Line 2: node id 'a'",
         edges=b"0 1\na b\n"),
    case("edgelist-negative-id", EDGES, "network.path", "edges.txt", "node id -1 is negative",
         edges=b"0 1\n-1 2\n"),
    case("edgelist-id-equals-n", EDGES, "network.path", "edges.txt", "node id 300 is out of range",
         edges=b"0 1\n1 300\n"),
    case("edgelist-id-far-out", EDGES, "network.path", "edges.txt", "out of range",
         edges=b"0 99999999999\n"),
    case("edgelist-fractional-id", EDGES, "network.path", "edges.txt", "not an integer",
         edges=b"0 1.5\n"),
    case("edgelist-one-column", EDGES, "network.path", "edges.txt", "Found 1 columns",
         edges=b"0\n1\n"),
    case("edgelist-four-columns", EDGES, "network.path", "edges.txt", "Found 4 columns",
         edges=b"0 1 1 1\n"),
    case("edgelist-missing-id", EDGES, "network.path", "edges.txt", "fewer than two node ids",
         edges=b"0,1\n2,\n"),
    case("edgelist-negative-weight", EDGES, "network.path", "edges.txt", "weight -2",
         edges=b"0 1 -2\n"),
    case("edgelist-nan-weight", EDGES, "network.path", "edges.txt", "weight nan",
         edges=b"0 1 nan\n"),
    case("edgelist-only-self-loops", EDGES, "network.path", "edges.txt", "only self-loops",
         edges=b"0 0\n5 5\n"),
    case("edgelist-binary", EDGES, "network.path", "edges.txt", EDGE_FILE,
         edges=bytes(range(256))),
]


# -- issue 11: inputs a careless user gives (each names its key; nothing is written)
CASES += [
    # absurd but once allowed: bounded where no value could mean anything (int32 message counts,
    # money whose totals would be infinite)
    case("tell-positive-absurd", "wom.tell_positive=1e12", "wom.tell_positive", "1000000000000.0",
         "[0, 100000]"),
    case("tell-negative-absurd", "wom.tell_negative=1e9", "wom.tell_negative", "1000000000.0",
         "[0, 100000]"),
    case("viral-reach-absurd", "wom.viral_reach=1e12", "wom.viral_reach", "1000000000000.0",
         "[0, 100000]"),
    case("fixed-cost-absurd", "firm.fixed_cost=1e308", "firm.fixed_cost", "1e+308", "1e+15"),
    case("budget-absurd", "firm.crm_budget=1e300", "firm.crm_budget", "1e+300", "1e+15"),
    # more people than the machine's memory holds (2e9 people need ~1.4 TB at the benchmarks'
    # bytes per person; test_memory_estimate_refuses_before_allocating pins the arithmetic)
    case("people-beyond-memory", "market.n_people=2000000000", "market.n_people", "2000000000",
         "memory this machine has available"),
    # interpolations that do not resolve: the message shows what was written and why it failed
    case("interpolation-unknown-key", "firm.quality=${nonexistent}", "firm.quality",
         "'${nonexistent}'", "interpolation that resolves"),
    case("interpolation-bad-argument", "firm.crm_budget=${per_person:abc}", "firm.crm_budget",
         "'${per_person:abc}'", "could not convert string to float"),
    case("interpolation-unset-env", "firm.quality=${oc.env:CRMSIM_TEST_UNSET_VARIABLE}",
         "firm.quality", "'${oc.env:CRMSIM_TEST_UNSET_VARIABLE}'", "CRMSIM_TEST_UNSET_VARIABLE"),
    # deleting a section blames the deletion, not the first key it took with it
    case("delete-market", "~market", "market", "'~market'", "every one is required"),
    case("delete-firm", "~firm", "firm", "'~firm'", "every one is required"),
    case("delete-n-people", "~market.n_people", "market.n_people", ("None", "'~market.n_people'"),
         ("whole number", "every one is required")),
    # an unquoted path with parentheses: the message says that quoting fixes it
    case("unquoted-parentheses", "network=edgelist network.path=/data/friends(2).csv", "override",
         "friends(2).csv", "network.path='/data/friends(2).csv'"),
    # a compressed edge list is not "no edges"
    case("edgelist-gzip", EDGES, "network.path", "edges.txt", "gzip-compressed",
         edges=gzip.compress(b"0 1\n1 2\n")),
    # a sweep without -m, and Hydra settings a single run would ignore
    case("sweep-without-m", "seed=0,1", "seed", "'0,1'", "add -m"),
    case("range-without-m", "seed=range(0,3)", "seed", "range(0,3)", "add -m"),
    case("hydra-run-dir", "hydra.run.dir=elsewhere", "hydra.run.dir", "'elsewhere'",
         "only in a sweep"),
    case("hydra-chdir-single-run", "hydra.job.chdir=true", "hydra.job.chdir", "'true'",
         "only in a sweep"),
]


def materialise(bad: Bad, inputs: Path) -> list[str]:
    """The overrides with {edges}, {missing} and {dir} replaced by real paths under ``inputs``."""
    inputs.mkdir(exist_ok=True)
    edges = inputs / "edges.txt"
    if bad.edges is not None:
        edges.write_bytes(bad.edges)
    paths = {"{edges}": edges, "{missing}": inputs / "missing.txt", "{dir}": inputs}
    out = list(SMALL)
    for o in bad.overrides:
        for placeholder, path in paths.items():
            o = o.replace(placeholder, str(path))
        out.append(o)
    return out


def assert_names_key_value_allowed(err: ConfigError, bad: Bad) -> None:
    text = str(err)
    assert err.key == bad.key, text
    assert "\n" not in text, "the message must be one paragraph"
    assert text.startswith(f"Invalid value for '{bad.key}': "), text
    shown = (bad.shown,) if isinstance(bad.shown, str) else bad.shown
    assert any(s in text.split(". Allowed:")[0] for s in shown), text
    assert err.allowed.strip(), text
    allowed = (bad.allowed,) if isinstance(bad.allowed, str) else bad.allowed
    assert any(a in f"{err.allowed} {err.detail}" for a in allowed), text


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory with the results root inside it: both must stay empty."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("CRMSIM_RESULTS", str(work / "results"))
    return work


@pytest.mark.parametrize("bad", CASES)
def test_bad_input_stops_before_anything_runs(bad, tmp_path, workdir, capsys, monkeypatch):
    # One composition per case (each takes a fraction of a second): the CLI is run with the
    # API's load_config wrapped, so the exception it raised is checked as well.
    raised: list[BaseException] = []
    real = crmsim.api.load_config

    def load_config(overrides=()):
        try:
            return real(overrides)
        except BaseException as err:
            raised.append(err)
            raise

    monkeypatch.setattr(crmsim.api, "load_config", load_config)
    overrides = materialise(bad, tmp_path / "input")
    code = main(["run", "-q", *overrides])
    out, err = capsys.readouterr()
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert_one_paragraph(err, bad.key)
    assert list(workdir.iterdir()) == []

    if not raised:  # the CLI stopped before composing (e.g. a launcher check): ask the API
        with pytest.raises(ConfigError) as info:
            real(overrides)
        raised.append(info.value)
    assert isinstance(raised[0], ConfigError), repr(raised[0])
    assert_names_key_value_allowed(raised[0], bad)
    assert list(workdir.iterdir()) == []


def assert_one_paragraph(stderr: str, key: str) -> None:
    assert stderr.startswith("crmsim: error: Invalid value for"), stderr
    assert f"'{key}'" in " ".join(stderr.split()), stderr
    assert "Traceback" not in stderr
    lines = stderr.rstrip("\n").split("\n")
    assert all(line.strip() for line in lines), "one paragraph: no blank lines"
    # Continuation lines are indented; anything else would be a second message.
    assert all(line.startswith("  ") for line in lines[1:]), stderr


# The real entry point in a fresh interpreter: exit status, stderr and the file system, for
# two representative cases (each costs a Python start-up of a second or two): a key checked
# when the config is composed, and a file checked after.
@pytest.mark.parametrize("overrides, key", [
    (["+typo=1"], "typo"),
    (["network=edgelist", "network.path=edges.txt"], "network.path"),
])
def test_console_entry_point_exits_2_without_traceback(overrides, key, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "edges.txt").write_text("0 1\n1 300\n")
    overrides = [o.replace("edges.txt", str(tmp_path / "edges.txt")) for o in overrides]
    env = {**os.environ, "CRMSIM_RESULTS": str(work / "results")}
    proc = subprocess.run([sys.executable, "-m", "crmsim.cli", "run", "-q", *SMALL, *overrides],
                          capture_output=True, text=True, env=env, cwd=work, timeout=120)
    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr
    assert proc.stdout == ""
    assert_one_paragraph(proc.stderr, key)
    assert list(work.iterdir()) == []


# -- edge lists: self-loops and duplicates are not errors, they are handled as the README says


def test_edgelist_self_loops_dropped_duplicates_merged(tmp_path):
    path = tmp_path / "friends.csv"
    path.write_text(
        "# who talks to whom\n"
        "source,target\n"
        "0,1\n"
        "1,0\n"        # the same tie written the other way round
        "0,1\n"        # and again
        "2,2\n"        # a self-loop
        "1,2\n"
        "3 4\n"        # whitespace works as well as commas
    )
    cfg = crmsim.load_config([*SMALL, "network=edgelist", f"network.path={path}"])
    model = crmsim.CRMModel(cfg)
    net = model.network
    assert net.n_edges == 3   # 0-1, 1-2, 3-4
    np.testing.assert_array_equal(net.degree[:6], [1, 2, 1, 1, 1, 0])
    assert net.degree.sum() == 6
    assert net.strong[[2], [2]].item() == 0   # the self-loop is not stored
    result = crmsim.simulate(cfg)
    assert len(result.timeseries) == 3


def test_edgelist_duplicate_keeps_the_largest_weight(tmp_path):
    path = tmp_path / "weighted.txt"
    path.write_text("0 1 0.25\n1 0 0.75\n0 1 0.5\n")
    cfg = crmsim.load_config([*SMALL, "network=edgelist", f"network.path={path}"])
    strong = crmsim.CRMModel(cfg).network.strong
    assert strong[[0], [1]].item() == pytest.approx(0.75)
    assert strong[[1], [0]].item() == pytest.approx(0.75)


# -- the results directory


def test_results_root_that_is_a_file_exits_2_and_leaves_it_alone(tmp_path, monkeypatch, capsys):
    root = tmp_path / "results"
    root.write_text("not a directory")
    monkeypatch.setenv("CRMSIM_RESULTS", str(root))
    assert main(["run", "-q", *SMALL]) == EXIT_BAD_INPUT
    assert_one_paragraph(capsys.readouterr().err, "CRMSIM_RESULTS")
    assert root.read_text() == "not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_out_option_under_a_file_exits_2(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    assert main(["run", "-q", "--out", str(blocker / "runs"), *SMALL]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "Traceback" not in err and "blocker" in err and "'--out'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_results_root_on_a_read_only_filesystem_exits_2(monkeypatch, capsys):
    # Even root cannot create a directory in /proc: os.access alone would say it can.
    monkeypatch.setenv("CRMSIM_RESULTS", "/proc/crmsim-results")
    assert main(["run", "-q", *SMALL]) == EXIT_BAD_INPUT
    assert_one_paragraph(capsys.readouterr().err, "CRMSIM_RESULTS")


# -- issue 11: bad input beyond one config (sweeps, reports, the Python API); nothing written


def test_named_pipe_as_edge_list_is_named_as_such(tmp_path, workdir, capsys):
    fifo = tmp_path / "edges.fifo"
    os.mkfifo(fifo)
    assert main(["run", "-q", *SMALL, "network=edgelist", f"network.path={fifo}"]) == EXIT_BAD_INPUT
    err = " ".join(capsys.readouterr().err.split())
    assert_one_paragraph(err, "network.path")
    assert "named pipe" in err and "does not exist" not in err
    assert list(workdir.iterdir()) == []


def test_memory_estimate_refuses_before_allocating(monkeypatch):
    # The arithmetic, independent of this machine: 10^7 people need 10^7 x BYTES_PER_PERSON.
    from crmsim import checks

    cfg = crmsim.load_config(["market.n_people=10000000", "sim.record_customers=false"])
    typed = crmsim.validation.validate(cfg)
    assert checks.memory_needed(typed) == 10**7 * checks.BYTES_PER_PERSON
    monkeypatch.setattr(checks, "memory_available", lambda: 2 * 10**9)
    with pytest.raises(ConfigError) as info:
        crmsim.load_config(["market.n_people=10000000"])
    assert info.value.key == "market.n_people" and "2.0 GB" in str(info.value)
    with pytest.raises(ConfigError):     # simulate checks too (a config made before)
        crmsim.simulate(cfg)
    monkeypatch.setattr(checks, "memory_available", lambda: None)   # unknown: not refused
    crmsim.load_config(["market.n_people=10000000"])


@pytest.mark.parametrize("sweep, key", [
    (["seed=range(0,0)"], "overrides"),                          # no jobs
    (["hydra.sweep.dir={file}/sweep", "seed=0,1"], "hydra.sweep.dir"),
    (["hydra.sweep.dir=/proc/crmsim-sweep", "seed=0,1"], "hydra.sweep.dir"),
    (["hydra.sweep.dir=sweeps/${now:%H}", "seed=0,1"], "hydra.sweep.dir"),
    (["experiment=compare_policies,strategy_map"], "experiment"),   # each is a sweep itself
    (["hydra.sweep.dir={dir}", "seed=0,1"], "hydra.sweep.dir"),      # a user's directory
])
def test_sweep_settings_that_cannot_work_exit_2_and_write_nothing(sweep, key, workdir, capsys):
    (workdir / "afile").write_text("mine")
    (workdir / "adir").mkdir()
    (workdir / "adir" / "0").write_text("mine too")       # what a job would be named
    sweep = [s.replace("{file}", str(workdir / "afile")).replace("{dir}", str(workdir / "adir"))
             for s in sweep]
    assert main(["run", "-m", "-q", *SMALL, *sweep]) == EXIT_BAD_INPUT
    assert_one_paragraph(capsys.readouterr().err, key)
    assert sorted(p.name for p in workdir.rglob("*")) == ["0", "adir", "afile"]
    assert (workdir / "afile").read_text() == "mine"
    assert (workdir / "adir" / "0").read_text() == "mine too"


def test_sweeping_into_another_sweeps_directory_is_refused(workdir, capsys):
    assert main(["run", "-m", "-q", "--no-report", "launcher=serial", *SMALL, "seed=0,1"]) == 0
    sweep = next((workdir / "results" / "runs").iterdir())
    before = {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["run", "-m", "-q", "--no-report", "launcher=serial", *SMALL, "seed=2,3",
                 f"hydra.sweep.dir={sweep}"]) == EXIT_BAD_INPUT
    assert_one_paragraph(capsys.readouterr().err, "hydra.sweep.dir")
    assert {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("where", ["--out", "CRMSIM_RESULTS"])
def test_results_root_holding_an_interpolation_exits_2(where, workdir, monkeypatch, capsys):
    root = str(workdir / "runs_${now:%H}")
    args = ["run", "-m", "-q", *SMALL, "seed=0,1"]
    if where == "--out":
        args[2:2] = ["--out", root]
    else:
        monkeypatch.setenv("CRMSIM_RESULTS", root)
    assert main(args) == EXIT_BAD_INPUT
    assert_one_paragraph(capsys.readouterr().err, where)
    assert list(workdir.iterdir()) == []


def test_empty_results_variable_means_the_default(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMSIM_RESULTS", "")
    assert main(["run", "-q", *SMALL]) == 0
    assert len(list((tmp_path / "results" / "runs").iterdir())) == 1


# -- crmsim report --out: only ever replaces a report it wrote


@pytest.fixture
def reported(tmp_path, monkeypatch):
    """Two finished runs below results/, and their report (results/report)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMSIM_RESULTS", str(tmp_path / "results"))
    for policy in ("transactional", "idic"):
        assert main(["run", "-q", *SMALL, f"policy={policy}"]) == 0
    assert main(["report", "results", "--no-plots"]) == 0
    return tmp_path


def _tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("out", [
    "mine.txt",            # a user's file
    "notes",               # a user's directory
    "empty",               # even an empty directory: a report does not take what is not its own
    "results",             # the runs themselves
    "results/runs",        # a directory of runs
    ".",                   # the working directory, holding the runs
    "mine.txt/report",     # below a file
    "/proc/crmsim-report",  # a place nothing can be written
])
def test_report_out_that_is_not_a_report_exits_2_and_touches_nothing(out, reported, capsys):
    (reported / "mine.txt").write_text("my notes")
    (reported / "notes").mkdir()
    (reported / "notes" / "a.md").write_text("keep me")
    (reported / "empty").mkdir()
    before = _tree(reported)
    capsys.readouterr()
    assert main(["report", "results", "--out", out, "--no-plots"]) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_paragraph(captured.err, "--out")
    assert _tree(reported) == before


def test_report_replaces_its_own_report_only(reported, capsys):
    first = reported / "results" / "report"
    assert (first / "report.md").is_file()
    # Its own report, at the default place and at --out: replaced.
    assert main(["report", "results", "--no-plots"]) == 0
    assert main(["report", "results", "--out", "elsewhere", "--no-plots"]) == 0
    assert main(["report", "results", "--out", "elsewhere", "--no-plots"]) == 0
    assert (reported / "elsewhere" / "report.md").is_file()
    # A report directory the user added a file to is no longer only a report: refused.
    (reported / "elsewhere" / "my-notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(["report", "results", "--out", "elsewhere", "--no-plots"]) == EXIT_BAD_INPUT
    assert (reported / "elsewhere" / "my-notes.txt").read_text() == "mine"


def test_report_baseline_naming_no_variant_exits_2(reported, capsys):
    capsys.readouterr()
    assert main(["report", "results", "--baseline", "nosuch", "--no-plots"]) == EXIT_BAD_INPUT
    assert_one_paragraph(capsys.readouterr().err, "--baseline")
    # runs that do not differ: there is no variant a baseline could name
    only = reported / "results" / "runs"
    for run in sorted(only.iterdir())[1:]:
        if (run / "summary.json").exists():
            (run / "summary.json").unlink()
    assert main(["report", "results", "--baseline", "transactional", "--no-plots"]) == EXIT_BAD_INPUT
    assert "no variant" in " ".join(capsys.readouterr().err.split())


# -- the Python API: misuse gets ConfigError (a ValueError) naming the argument


@pytest.mark.parametrize("call, key", [
    (lambda: crmsim.load_config("seed=3"), "overrides"),
    (lambda: crmsim.load_config(["seed=3", 4]), "overrides"),
    (lambda: crmsim.simulate(["seed=3"]), "cfg"),
    (lambda: crmsim.simulate("seed=3"), "cfg"),
    (lambda: crmsim.compare({"a": SMALL}, seeds=[]), "seeds"),
    (lambda: crmsim.compare({"a": SMALL}, seeds=[0, -1]), "seeds"),
    (lambda: crmsim.compare({"a": SMALL}, seeds=0), "seeds"),
    (lambda: crmsim.compare({"a": SMALL}, n_jobs=0), "n_jobs"),
    (lambda: crmsim.compare({"a": SMALL}, kpis=["nosuch"]), "kpis"),
    (lambda: crmsim.compare({"a": SMALL}, kpis="npv_profit"), "kpis"),
    (lambda: crmsim.compare({}), "variants"),
    (lambda: crmsim.compare({"a": "policy=idic"}), "variants['a']"),
    (lambda: crmsim.compare({"a": SMALL}, baseline="b"), "baseline"),
])
def test_api_misuse_names_the_argument(call, key, workdir):
    with pytest.raises(ConfigError) as info:
        call()
    assert info.value.key == key, str(info.value)
    assert str(info.value).startswith(f"Invalid value for '{key}': ")
    assert list(workdir.iterdir()) == []


def test_compare_counts_a_repeated_seed_once():
    variants = {"transactional": SMALL, "idic": [*SMALL, "policy=idic"]}
    with pytest.warns(UserWarning, match="repeated seeds"):
        table = crmsim.compare(variants, seeds=[0, 0, 1])
    runs = table.attrs["runs"]
    assert sorted(runs["seed"]) == [0, 0, 1, 1]       # two markets per variant, not three
    assert set(table["n"]) == {2}


def test_parallel_jobs_that_do_not_fit_side_by_side_are_refused(workdir, monkeypatch, capsys):
    from crmsim import checks

    one = checks.memory_needed(crmsim.validation.validate(crmsim.load_config(SMALL)))
    monkeypatch.setattr(checks, "memory_available", lambda: int(2.5 * one))   # two jobs fit
    args = ["run", "-m", "-q", "--no-report", *SMALL, "seed=0,1,2,3"]
    assert main([*args, "hydra.launcher.n_jobs=4"]) == EXIT_BAD_INPUT
    err = " ".join(capsys.readouterr().err.split())
    assert_one_paragraph(err, "hydra.launcher.n_jobs")
    assert "hydra.launcher.n_jobs=2" in err
    assert list(workdir.iterdir()) == []
    assert main([*args, "launcher=serial"]) == 0          # one at a time: fits


def test_memory_estimate_counts_only_the_edges_that_are_stored():
    from crmsim import checks

    def need(*overrides):
        cfg = crmsim.load_config(["market.n_people=100000", "sim.record_customers=false", *overrides])
        return checks.memory_needed(crmsim.validation.validate(cfg))

    base = need()
    assert need("network=complete") == base          # never materialised: no edges stored
    assert need("network.mean_degree=30") == base + 100000 * 20 * checks.BYTES_PER_EXTRA_NEIGHBOUR
    assert need("sim.record_customers=true") == base + 100000 * checks.BYTES_PER_CUSTOMER_ROW
