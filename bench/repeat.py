"""2. Repeat run of the warm list: the same list again, right after the first run warmed it.

Everything is cached, so the run should cost no upstream manifest GET (what Docker Hub counts as a pull). Counted per
image: the library's AWS calls (boto3, through a botocore hook) and its upstream requests by kind (the upstream
front's counts of the library's client). The repeat run at scale, on a 6-hourly schedule, is in bench/scale.py; the
ratio of first to repeat time is retired (bench/README.md: it measured the sandbox's import, not Pullthrough).
"""

from __future__ import annotations

from collections.abc import Callable

from bench import warm
from bench.harness import Rig, progress
from bench.network import Model
from bench.table import Columns, Figure, columns, seconds


def again(rig: Rig, count: int, model: Model) -> tuple[warm.WarmRun, warm.WarmRun]:
    """The first run under `model` (shared with the warm benchmark), then the same list again."""
    first = warm.first_run(rig, count, model)
    rig.set_model(model)
    progress(f"running the same {count} images again ({model.describe()})")
    repeated = warm.warm_run(rig, warm.images_for(rig, count, model.label()))
    rig.cache[f"repeat-{count}{model.label()}"] = repeated
    outcomes = {o.value: n for o, n in repeated.report.counts.items()}
    if outcomes != {"already_cached": count} or repeated.summary["queued"] != 0:
        raise RuntimeError(f"the repeat run was expected to find everything cached: {outcomes}")
    return first, repeated


def run(rig: Rig, count: int, models: list[Model]) -> list[Figure]:
    """Each model's repeat run; the figures (the first model's in the value column)."""
    runs = [again(rig, count, model) for model in models]
    section = f"2 repeat run ({count} images, right after the first)"

    def both(show: Callable[[warm.WarmRun, warm.WarmRun], str]) -> Columns:
        return columns(runs, lambda pair: show(*pair))

    gets = runs[0][1].registry.manifest_gets
    return [
        Figure(section, "first run / repeat run", **both(lambda f, r: f"{seconds(f.seconds)} / {seconds(r.seconds)}")),
        Figure(
            section,
            "upstream manifest GETs in the repeat run",
            goal="0",
            met=gets == 0,
            **both(lambda f, r: str(r.registry.manifest_gets)),
        ),
        Figure(section, "AWS calls per image in the repeat run", **both(lambda f, r: warm.per_image(r.aws, count))),
        Figure(
            section,
            "Pullthrough's upstream requests per image in the repeat run",
            **both(lambda f, r: warm.by_kind(r.registry.library(), count)),
        ),
    ]
