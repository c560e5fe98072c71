"""The kubernetes source: workload manifests, and so what `helm template` prints.

Every document of every file (multi-document YAML, `kind: List` and the `...List` kinds with `items`); the pod spec
of Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, PodTemplate and CronJob; the
images of its containers, initContainers and ephemeralContainers. Other kinds (Service, ConfigMap, CRDs...) name no
image and are passed over.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pullthrough import safe_yaml
from pullthrough.config.source_entries import KubernetesSource
from pullthrough.errors import Problem
from pullthrough.sources.files import read_text
from pullthrough.sources.resolving import Reading

if TYPE_CHECKING:
    from pullthrough.config import Config

__all__ = ["read"]

# Where each kind keeps its pod spec (Kubernetes API reference, workloads-resources).
_POD_SPEC: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
# CRDs in a rendered chart nest their OpenAPI schemas deeply; no manifest legitimately needs more than this.
_MAX_DEPTH = 64


def read(source: KubernetesSource, config: Config, base: Path) -> Reading:
    """Every container image the manifests name, each placed as file → Kind/name → container."""
    reading = Reading()
    for name in source.files:
        file = read_text(base, name, source=source.label)
        if file.problem is not None or file.text is None:
            reading.problems.extend([file.problem] if file.problem else [])
            continue
        try:
            documents = safe_yaml.load_all(file.text, max_depth=_MAX_DEPTH)
        except safe_yaml.YamlProblem as exc:
            where = f"{name}:{exc.line}" if exc.line is not None else name
            reading.problems.append(Problem(location=where, value=exc.text or name, message=exc.message))
            continue
        for workload, container, image in _images(documents):
            place = f"{name} → {workload} → {container}"
            if isinstance(image, str) and image:
                reading.add(image, config, source=source.label, place=place)
            else:
                reading.problems.append(
                    Problem(location=place, value=repr(image), message="a container needs image: <reference>")
                )
    return reading


def _images(documents: list[Any]) -> Iterator[tuple[str, str, Any]]:
    """(Kind/name, container name, image) for every container of every workload, Lists unfolded."""
    pending = list(reversed(documents))
    while pending:
        document = pending.pop()
        if not isinstance(document, dict):
            continue
        kind = str(document.get("kind", ""))
        items = document.get("items")
        if kind.endswith("List") and isinstance(items, list):
            pending.extend(reversed(items))
            continue
        path = _POD_SPEC.get(kind)
        if path is None:
            continue
        spec = _walk(document, path)
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        workload = f"{kind}/{name or '(unnamed)'}"
        for field in _CONTAINER_LISTS:
            containers = spec.get(field) if isinstance(spec, dict) else None
            for index, container in enumerate(containers if isinstance(containers, list) else []):
                if isinstance(container, dict):
                    label = str(container.get("name") or f"{field}[{index}]")
                    yield workload, f"{field}/{label}" if field != "containers" else label, container.get("image")


def _walk(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node
