"""`pullthrough images` on the source fixtures: each reference with its source and place, problems exit 1."""

from __future__ import annotations

import io as std_io
import json
import shutil
from pathlib import Path

import jsonschema

from pullthrough import cli

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "sources"


def run(*argv: str) -> tuple[int, str]:
    out, err = std_io.StringIO(), std_io.StringIO()
    code = cli.main(list(argv), cli.Io(stdout=out, stderr=err))
    return code, out.getvalue()


def test_images_lists_every_reference_with_its_source_and_place() -> None:
    code, text = run("images", "--config", str(FIXTURES / "pullthrough.yaml"))
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == "24 image reference(s) from 4 source(s)"
    assert "olake:" in lines
    assert "  docker.io/olakego/ui:v0.2.3  <- olake/docker-compose.yml → olake-ui" in lines
    assert (
        "  docker.io/olakego/source-mysql:v0.1.8  <- olake/docker-compose.yml → source-mysql (also in warm.images)"
        in lines
    )
    assert (
        "  quay.io/prometheus/node-exporter:v1.8.2  <- helm/prometheus-node-exporter-4.39.0.yaml → "
        "DaemonSet/node-exporter-prometheus-node-exporter → node-exporter" in lines
    )
    assert "  ghcr.io/datazip-inc/olake:v0.1.8  <- images.txt:4" in lines
    assert lines[-1] == (
        "note: olake/docker-compose.yml → olake-worker: not pulled, so nothing to warm "
        "(built from source (build: without image:))"
    )


def test_images_json_follows_its_published_schema_and_names_the_cache_repository() -> None:
    code, text = run("images", "--json", "--config", str(FIXTURES / "pullthrough.yaml"))
    document = json.loads(text)
    published = json.loads((ROOT / "docs" / "cli" / "images.schema.json").read_text())
    jsonschema.validate(document, published, cls=jsonschema.Draft202012Validator)
    assert code == document["exit_code"] == 0
    first = document["references"][0]
    assert first == {
        "reference": "docker.io/olakego/ui:v0.2.3",
        "source": "olake",
        "place": "olake/docker-compose.yml → olake-ui",
        "repository": "dockerhub/olakego/ui",
        "warm_images": False,
    }
    assert document["problems"] == []


def test_a_problem_in_a_source_exits_1_and_names_the_file_place_value_and_fix(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES, tmp_path / "config")
    (tmp_path / "config" / "images.txt").write_text("olakego/ui@sha256:" + "b" * 64 + "\ngcr.io/distroless/base:1\n")
    code, text = run("images", "--json", "--config", str(tmp_path / "config" / "pullthrough.yaml"))
    document = json.loads(text)
    assert code == document["exit_code"] == 1
    first, second = document["problems"]
    assert first["location"] == "images.txt:1"
    assert first["value"] == "olakego/ui@sha256:" + "b" * 64
    assert first["message"].startswith("a digest-only reference: ECR does not cache an image first pulled by digest")
    assert second["location"] == "images.txt:2"
    assert "cannot cache images from gcr.io" in second["message"]


def test_without_sources_images_says_only_warm_images_are_warmed(tmp_path: Path) -> None:
    config = tmp_path / "pullthrough.yaml"
    config.write_text("version: 1\nrules: [{prefix: quay, upstream: quay}]\n")
    assert run("images", "--config", str(config)) == (0, "warm.sources is empty: only warm.images are warmed\n")
