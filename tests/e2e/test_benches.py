"""The benchmarks under bench/ still run end to end and print their figures (tiny sizes; the
figures themselves are read by people, never asserted: these machines are shared and noisy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bench(name: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTBOT_")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / name), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_participant_bench_prints_the_targets() -> None:
    out = bench("participant_bench.py", "--participants", "10", "--repeats", "1", "--rates", "60")
    assert "median: bot" in out and "echo" in out
    assert "most answers stored a second (closed loop)" in out
    assert "-- open loop: 60 presses/s offered over 10 people, 1 time(s)" in out
    assert "p95 at 300 answers/s: not run (add --rates 360)" in out  # 60/s is below the target
    assert "against echo flat out (closed loop, medians)" in out


def test_press_cost_prints_a_figure() -> None:
    out = bench("press_cost.py", "--participants", "20", "--repeats", "1")
    assert "us CPU per press in the bot's own code" in out
