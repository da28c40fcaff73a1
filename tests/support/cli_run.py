"""Run the `consultbot` command in a subprocess, as an admin would, with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def consultbot(
    *args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`consultbot ARGS` through the installed entry point (bot.cli:main), so exit codes and
    stderr are what a person at a terminal sees. CONSULTBOT_* variables of the test run are
    dropped: each test says exactly which settings it gives."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTBOT_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        cwd=cwd,
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )
