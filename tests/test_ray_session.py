"""launcher=ray leaves nothing behind: the callback in configs/launcher/ray.yaml starts the local
Ray in a private temporary directory with an in-memory token, and removes both after the sweep.
Ray itself is not installed in the test environment: a stand-in records what it is asked."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from crmsim.ray_session import PrivateRaySession

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_ray(monkeypatch, tmp_path):
    calls = {"init": [], "shutdown": 0}
    state = {"up": False}

    def init(**kw):
        calls["init"].append({**kw, "token": os.environ.get("RAY_AUTH_TOKEN"),
                              "tmpdir": os.environ.get("TMPDIR")})
        Path(kw["_temp_dir"], "session_x").mkdir()   # what Ray writes
        state["up"] = True

    def shutdown():
        calls["shutdown"] += 1
        state["up"] = False

    ray = SimpleNamespace(init=init, shutdown=shutdown, is_initialized=lambda: state["up"])
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.setenv("HOME", str(tmp_path))          # no ~/.ray/auth_token
    for key in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(key, raising=False)
    return calls


def _config(address=None):
    return OmegaConf.create({"hydra": {"launcher": {"ray": {"init": {"address": address,
                                                                     "num_cpus": 2}}}}})


def test_local_ray_runs_in_a_private_directory_removed_afterwards(fake_ray, tmp_path):
    before = os.environ.get("TMPDIR")
    cb = PrivateRaySession()
    cb.on_multirun_start(_config())
    (call,) = fake_ray["init"]
    temp = Path(call["_temp_dir"])
    assert temp.is_dir() and temp.name.startswith("crmsim-ray-") and call["num_cpus"] == 2
    assert call["token"] and call["tmpdir"] == str(temp)
    cb.on_multirun_end(_config())
    assert fake_ray["shutdown"] == 1 and not temp.exists()
    assert "RAY_AUTH_TOKEN" not in os.environ and os.environ.get("TMPDIR") == before
    assert not (tmp_path / ".ray").exists()


def test_a_cluster_address_or_a_users_token_is_left_alone(fake_ray, tmp_path, monkeypatch):
    PrivateRaySession().on_multirun_start(_config("head:6379"))
    assert fake_ray["init"] == []
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("users")
    cb = PrivateRaySession()
    cb.on_multirun_start(_config())
    assert fake_ray["init"][0]["token"] is None     # Ray reads the user's own token file
    cb.close()
    assert (tmp_path / ".ray" / "auth_token").read_text() == "users"


def test_the_ray_launcher_config_adds_the_callback():
    cfg = OmegaConf.load(ROOT / "configs" / "launcher" / "ray.yaml")
    assert cfg.hydra.callbacks.private_ray._target_ == "crmsim.ray_session.PrivateRaySession"
