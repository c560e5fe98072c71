"""The kubernetes source on real files: `helm template` output of public charts and hand-written workloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from pullthrough import sources
from pullthrough.config import Config, parse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"

RULES = """version: 1
rules:
  - {prefix: dockerhub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub}
  - {prefix: ghcr, upstream: github-container-registry, credentials: ecr-pullthroughcache/ghcr}
  - {prefix: quay, upstream: quay}
  - {prefix: k8s, upstream: k8s}
warm:
  sources:
"""


def config_with(source: str) -> Config:
    return parse(RULES + "    - " + source + "\n")


def test_a_rendered_ingress_nginx_chart_yields_its_controller_and_its_hook_jobs() -> None:
    config = config_with("{kind: kubernetes, name: ingress, files: [helm/ingress-nginx-4.11.3.yaml]}")
    reading = sources.read(config, directory=FIXTURES)
    assert reading.problems == []
    certgen = (
        "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.4.4"
        "@sha256:a9f03b34a3cbfbb26d103a14046ab2c5130a80c3d69d526ff8063d2b37b9fd3f"
    )
    assert [(item.reference, item.place) for item in reading.references] == [
        (
            "registry.k8s.io/ingress-nginx/controller:v1.11.3"
            "@sha256:d56f135b6462cfc476447cfe564b83a45e8bb7da2774963b00d12161112270b7",
            "helm/ingress-nginx-4.11.3.yaml → Deployment/ingress-nginx-controller → controller",
        ),
        (certgen, "helm/ingress-nginx-4.11.3.yaml → Job/ingress-nginx-admission-create → create"),
        (certgen, "helm/ingress-nginx-4.11.3.yaml → Job/ingress-nginx-admission-patch → patch"),
    ]
    # The two hook jobs share an image: warmed once, attributed to the first place
    assert len(reading.unique()) == 2
    assert {item.source for item in reading.references} == {"ingress"}


def test_a_rendered_node_exporter_chart_yields_its_daemonset() -> None:
    config = config_with("{kind: kubernetes, files: [helm/prometheus-node-exporter-4.39.0.yaml]}")
    (item,) = sources.references(config, directory=FIXTURES)
    assert item == sources.Yielded(
        "quay.io/prometheus/node-exporter:v1.8.2",
        "kubernetes helm/prometheus-node-exporter-4.39.0.yaml",
        "helm/prometheus-node-exporter-4.39.0.yaml → DaemonSet/node-exporter-prometheus-node-exporter → node-exporter",
    )


def test_workloads_yield_init_ephemeral_and_cronjob_containers_and_list_items() -> None:
    config = config_with("{kind: kubernetes, files: [manifests/workloads.yaml]}")
    reading = sources.read(config, directory=FIXTURES)
    assert reading.problems == []
    assert [(item.place.split(" → ", 1)[1], item.reference) for item in reading.references] == [
        ("StatefulSet/postgres → initContainers/fix-permissions", "docker.io/library/busybox:1.36"),
        ("StatefulSet/postgres → postgres", "docker.io/library/postgres:16.4-alpine"),
        ("CronJob/nightly-backup → initContainers/wait-for-db", "ghcr.io/groundnuty/k8s-wait-for:v2.0"),
        ("CronJob/nightly-backup → backup", "ghcr.io/example-org/pg-backup:2024.11.02"),
        ("Pod/debug-target → app", "docker.io/library/nginx:latest"),
        ("Pod/debug-target → ephemeralContainers/debugger", "docker.io/nicolaka/netshoot:v0.13"),
        ("ReplicaSet/web-7d4b9c → web", "registry.k8s.io/pause:3.10"),
        ("Pod/listed → tool", "quay.io/prometheus/busybox:latest"),
    ]


def test_a_reference_into_the_cache_in_a_manifest_is_mapped_back(tmp_path: Path) -> None:
    (tmp_path / "deploy.yaml").write_text(
        "kind: Deployment\nmetadata: {name: ui}\nspec:\n  template:\n    spec:\n      containers:\n"
        "        - {name: ui, image: 111222333444.dkr.ecr.eu-west-1.amazonaws.com/quay/prometheus/prometheus:v2.54.1}\n"
    )
    (item,) = sources.references(config_with("{kind: kubernetes, files: [deploy.yaml]}"), directory=tmp_path)
    assert item.reference == "quay.io/prometheus/prometheus:v2.54.1"


@pytest.mark.parametrize(
    ("manifest", "location", "message"),
    [
        ("kind: Pod\nmetadata:\n  name: p\n   oops: 1\n", "m.yaml:4", "YAML syntax"),
        ("kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a}]}\n", "m.yaml → Pod/p → a", "needs image"),
        (
            "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: 'redis@sha256:" + "1" * 64 + "'}]}\n",
            "m.yaml → Pod/p → a",
            "a digest-only reference",
        ),
        (
            "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: gcr.io/distroless/static:1}]}\n",
            "m.yaml → Pod/p → a",
            "ECR pull-through cache cannot cache images from gcr.io",
        ),
    ],
)
def test_broken_manifests_name_the_file_the_place_and_the_fix(
    tmp_path: Path, manifest: str, location: str, message: str
) -> None:
    (tmp_path / "m.yaml").write_text(manifest)
    reading = sources.read(config_with("{kind: kubernetes, files: [m.yaml]}"), directory=tmp_path)
    (problem,) = reading.problems
    assert problem.location == location
    assert message in problem.message


def test_an_unreadable_file_is_a_problem_and_the_other_files_still_count(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(
        "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: nginx:1}]}\n"
    )
    (tmp_path / "bad.yaml").write_bytes(b"\xff\xfe kind: Pod")
    reading = sources.read(config_with("{kind: kubernetes, files: [bad.yaml, ok.yaml]}"), directory=tmp_path)
    assert [item.reference for item in reading.references] == ["docker.io/library/nginx:1"]
    (problem,) = reading.problems
    assert str(problem) == "bad.yaml (source kubernetes bad.yaml): not UTF-8 text; save it as UTF-8 (got bad.yaml)"
