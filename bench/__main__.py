"""`make bench` (`python -m bench`): run the benchmarks against one sandbox and print one table of figures and ratios.

    python -m bench                         every benchmark, 40 images, with the network model and without
    python -m bench --only warm,repeat -n 20
    python -m bench --only scale --scale 1000,10000
    python -m bench --upstream-ms 40 --token-ms 60 --aws-ms 30 --bandwidth 1   the model (bandwidth in MiB/s)
    python -m bench --no-loopback           the model's column only (half the time)
    python -m bench --json bench.json       the figures as JSON too

Benchmarks: warm (1), repeat (2), bytes (3), coldstart (4), scale (5: first plan), schedule (5: repeat runs every
6 h), rotation (6); bench/README.md says what each measures and how. The sandbox starts only when a chosen benchmark
needs it, and everything it starts is stopped at the end, also on failure or Ctrl-C. Progress goes to stderr, the
table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.network import DEFAULT_AWS_MS, DEFAULT_TOKEN_MS, DEFAULT_UPSTREAM_MS, Model
from bench.table import Figure, render

ORDER = ("warm", "repeat", "bytes", "coldstart", "scale", "schedule", "rotation")
NEEDS_SANDBOX = {"warm", "repeat", "bytes", "scale", "schedule", "rotation"}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(ORDER), help=f"comma-separated subset of {', '.join(ORDER)}")
    parser.add_argument("-n", "--images", type=int, default=40, help="images in the warm list (default 40)")
    parser.add_argument("--scale", default="1000,10000", help="the two plan sizes of the scale benchmark")
    parser.add_argument("--scale-runs", type=int, default=3, help="first plans of the small size (median; default 3)")
    model = parser.add_argument_group("the network model (bench/network.py)")
    model.add_argument("--upstream-ms", type=float, default=DEFAULT_UPSTREAM_MS, help="per upstream /v2/ request")
    model.add_argument("--token-ms", type=float, default=DEFAULT_TOKEN_MS, help="per token realm request")
    model.add_argument("--aws-ms", type=float, default=DEFAULT_AWS_MS, help="per AWS call of the library")
    model.add_argument("--bandwidth", type=float, default=None, help="MiB/s per upstream connection (default none)")
    model.add_argument("--no-loopback", action="store_true", help="skip the runs without the model")
    parser.add_argument("--rounds", type=int, default=7, help="import-time rounds of the cold start benchmark")
    parser.add_argument("--no-build", action="store_true", help="skip `sam build` in the cold start benchmark")
    parser.add_argument("--json", type=Path, help="also write the figures to this file as JSON")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(ORDER))
    if unknown:
        parser.error(f"--only: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    args.chosen = [name for name in ORDER if name in chosen]
    sizes = [int(part) for part in args.scale.split(",")]
    if len(sizes) != 2 or not 0 < sizes[0] < sizes[1]:
        parser.error("--scale takes two sizes, smaller first, e.g. 1000,10000")
    args.sizes = (sizes[0], sizes[1])
    if args.images < 1:
        parser.error("-n must be at least 1")
    bandwidth = args.bandwidth * 1024 * 1024 if args.bandwidth else None
    args.model = Model(args.upstream_ms, args.token_ms, args.aws_ms, bandwidth)
    args.models = [args.model] if args.no_loopback or not args.model.on else [args.model, args.model.off()]
    return args


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"load average {load[0]:.1f} at start"
    )


def run(args: argparse.Namespace) -> list[Figure]:
    """The chosen benchmarks, in the documented order, against one sandbox."""
    from bench import bytes as bytes_bench
    from bench import coldstart, repeat, rotation, scale, warm

    figures: list[Figure] = []
    if "coldstart" in args.chosen:
        # First, before the sandbox loads the machine: import times are the noisiest figures here.
        figures += coldstart.run(args.rounds, build=not args.no_build)
    if not NEEDS_SANDBOX & set(args.chosen):
        return figures
    from bench.harness import rig

    with tempfile.TemporaryDirectory(prefix="pullthrough-bench-") as workdir, rig(Path(workdir)) as world:
        if "warm" in args.chosen:
            figures += warm.run(world, args.images, args.models)
        if "repeat" in args.chosen:
            figures += repeat.run(world, args.images, args.models)
        if "bytes" in args.chosen:
            figures += bytes_bench.run(world, args.images, args.model)
        if "scale" in args.chosen:
            figures += scale.run(world, args.sizes, args.models, args.scale_runs)
        if "schedule" in args.chosen:
            figures += scale.repeat_run(world, args.sizes, args.model)
        if "rotation" in args.chosen:
            world.set_model(args.model.off())
            figures += rotation.run(world)
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    header = f"Pullthrough bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}"
    print(header, file=sys.stderr, flush=True)
    figures = run(args)
    elapsed = time.monotonic() - started
    print(header)
    print(f"benchmarks: {', '.join(args.chosen)}; {elapsed:.0f} s in all; load average {os.getloadavg()[0]:.1f} at end")
    print(f"network model: {args.model.describe()}")
    print()
    print(render(figures))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "header": header,
                    "seconds": elapsed,
                    "model": args.model.as_dict(),
                    "figures": [f.__dict__ for f in figures],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    missed = [f for f in figures if f.met is False]
    if missed:
        print(f"\n{len(missed)} figure(s) missed their goal (see bench/README.md for why).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
