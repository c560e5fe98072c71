"""3. Bytes moved through warm_images per image warmed, against the image's size.

From the first run's report: each item's `bytes_moved` against the image's size (configs and layers of the wanted
platforms, as pushed upstream). warm_images makes ECR import an image through its control plane, so only the
trigger's manifest passes through the function (and a layer downloaded as a last resort, which the sandbox's default
ECR never needs). Goal (the import-warming issue): at most 0.05 of the image. The skopeo pull of the same list writes
every byte to disk, manifests included; its total is shown beside. The repeat run moves nothing.
"""

from __future__ import annotations

from bench import warm
from bench.harness import Rig
from bench.network import Model
from bench.table import Figure, size

GOAL = 0.05  # bytes through the function per byte of image warmed


def run(rig: Rig, count: int, model: Model) -> list[Figure]:
    """Bytes per image from the first run's report under `model` (bytes do not depend on it); the figures."""
    first = warm.first_run(rig, count, model)
    label = model.label()
    images = {f"docker.io/{image.reference}": image for image in warm.images_for(rig, count, label)}
    moved = {item.subject: item.details.bytes_moved or 0 for item in first.report.items}
    ratios = [moved[subject] / image.wanted_size for subject, image in images.items()]
    total_moved = sum(moved.values())
    total_size = sum(image.wanted_size for image in images.values())
    section = f"3 bytes through the function ({count} images)"
    figures = [
        Figure(section, "moved per image warmed (mean)", size(total_moved / count)),
        Figure(section, "image size (mean: configs and layers of the wanted platforms)", size(total_size / count)),
        Figure(
            section,
            "moved / size: whole list, per image min..max",
            f"{total_moved / total_size:.3f}, {min(ratios):.3f}..{max(ratios):.3f}",
            goal=f"<= {GOAL}",
            met=max(ratios) <= GOAL,
        ),
    ]
    pulled = rig.cache.get(f"pulled-{count}{label}")
    if pulled is not None:
        figures.append(
            Figure(section, "skopeo: written per image (manifests included)", size(pulled.bytes_written / count))
        )
    again = rig.cache.get(f"repeat-{count}{label}")
    if again is not None:
        repeat_moved = sum(item.details.bytes_moved or 0 for item in again.report.items)
        figures.append(Figure(section, "moved in the repeat run", size(repeat_moved)))
    return figures
