"""The bench harness runs end to end on a tiny list: `python -m bench` in a subprocess, its JSON figures read back.

It runs with the network model (bench/network.py: upstream and token realm delays, a per-connection cap, a delay per
AWS call) and without, side by side, and the model's column must carry the same counts as loopback's.

Only that the harness works: no figure is held to a goal here (speed belongs in bench/, not in tests). A subprocess,
because the bench adjusts moto process-wide (bench/harness.py, `correct_moto`) and starts its own sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiny_bench_run_prints_every_figure_of_the_chosen_benchmarks(docker_registry: str, tmp_path: Path) -> None:
    # Given a warm list of one image, and the benchmarks that share the sandbox
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PULLTHROUGH_"))}
    # When the bench runs them
    result = subprocess.run(
        [
            *(sys.executable, "-m", "bench", "--only", "warm,repeat,bytes,rotation", "-n", "1", "--json", str(out)),
            *("--upstream-ms", "5", "--token-ms", "5", "--aws-ms", "2", "--bandwidth", "64"),
        ],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Then it succeeds, prints one table, and reports a figure of each benchmark with the repeat run's pulls at 0
    assert result.returncode == 0, result.stderr[-3000:]
    assert "speed-up (skopeo time / Pullthrough time)" in result.stdout
    figures = json.loads(out.read_text())["figures"]
    sections = {figure["section"].split(" ", 1)[0] for figure in figures}
    assert sections == {"1", "2", "3", "6"}
    pulls = next(f for f in figures if f["name"] == "upstream manifest GETs in the repeat run")
    assert (pulls["value"], pulls["met"]) == ("0", True)
    moved = next(f for f in figures if f["name"].startswith("moved / size"))
    assert moved["met"] is True  # ECR imports the layers: only manifests pass through the function
    # And the model was on for one column and off for the other, with the same counts in both
    assert json.loads(out.read_text())["model"] == {"upstream_ms": 5, "token_ms": 5, "aws_ms": 2, "bandwidth": 64 << 20}
    speedup = next(f for f in figures if f["name"] == "speed-up (skopeo time / Pullthrough time)")
    assert speedup["value"].endswith("x")
    assert speedup["loopback"].endswith("x")
    upstream = next(f for f in figures if f["name"] == "Pullthrough's upstream requests per image in the repeat run")
    assert upstream["value"] == upstream["loopback"]
    # Right after the first run, no tag is due for ECR's daily re-check: the repeat run asks the upstream nothing
    assert upstream["value"] == "0.00 (none)"
    first = next(f for f in figures if f["name"] == "Pullthrough's upstream requests per image, by kind")
    assert "HEAD manifest" in first["value"]  # the library's own requests, told apart from ECR's by client
    own = next(f for f in figures if f["name"].startswith("Pullthrough's own CPU per image"))
    assert own["value"].endswith(" ms")
    assert own["loopback"].endswith(" ms")
