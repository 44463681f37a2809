"""``launcher=ray`` without leftovers: a Ray started for a sweep cleans up after itself.

A local ``ray.init()`` writes a session folder under ``/tmp/ray`` and, with Ray's token
authentication (on by default for a new local cluster), a token file at ``~/.ray/auth_token``;
both outlive the sweep. ``configs/launcher/ray.yaml`` adds this Hydra callback, which starts the
local Ray itself before hydra-ray-launcher looks (the launcher then reuses it): in a private
temporary directory, with a token held in memory (unless the user has one), and stops Ray and
removes the directory when the sweep ends. Connecting to a cluster
(``hydra.launcher.ray.init.address=<head>:6379``) is left to hydra-ray-launcher, unchanged.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

TOKEN_ENV = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def _has_token() -> bool:
    return any(k in os.environ for k in TOKEN_ENV) or (Path.home() / ".ray" / "auth_token").exists()


class PrivateRaySession(Callback):
    def __init__(self) -> None:
        self.tmp: str | None = None
        self.token_set = False
        self.saved_tmpdir: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        init = OmegaConf.select(config, "hydra.launcher.ray.init")
        if init is None or init.get("address") is not None:
            return
        import ray

        if ray.is_initialized():
            return
        options = OmegaConf.to_container(init, resolve=True)
        if options.get("_temp_dir") is None:
            # Short and under the system's temp: Ray's socket paths must stay under 107 bytes.
            self.tmp = options["_temp_dir"] = tempfile.mkdtemp(prefix="crmsim-ray-")
            # Ray's processes put their own temporary files (multiprocessing's pymp-*) there too.
            self.saved_tmpdir = os.environ.get("TMPDIR")
            os.environ["TMPDIR"] = self.tmp
        if not _has_token():
            os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)   # Ray's processes inherit it
            self.token_set = True
        atexit.register(self.close)   # also when the sweep ends with an exception
        ray.init(**options)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.tmp is None and not self.token_set:
            return
        import ray

        ray.shutdown()
        if self.token_set:
            os.environ.pop("RAY_AUTH_TOKEN", None)
            self.token_set = False
        if self.tmp is not None:
            if self.saved_tmpdir is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = self.saved_tmpdir
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
