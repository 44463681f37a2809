"""Serve the dashboard on localhost with Solara's own server (``solara run``)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from ..api import load_config
from ..errors import ConfigError

APP = "crmsim.viz.app"


def serve(overrides: Sequence[str] = (), host: str = "localhost", port: int = 8765,
          open_browser: bool = True) -> int:
    """Check the overrides, then serve the dashboard until interrupted.

    Bad input raises ``ConfigError`` before the server starts.
    """
    from .page import OVERRIDES_ENV, with_small_market

    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError("--port", port, "an integer port in [0, 65535] (0 picks a free port)")
    load_config(with_small_market(overrides))
    os.environ[OVERRIDES_ENV] = json.dumps(list(overrides))
    from solara.__main__ import run

    args = [APP, "--host", host, "--port", str(port), "--production", "--no-check-version",
            "--open" if open_browser else "--no-open"]
    run.main(args=args, prog_name="crmsim viz", standalone_mode=False)
    return 0
