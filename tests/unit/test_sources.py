"""warm.sources: the config model (a union on kind) and the text source, read from real files on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from pullthrough import sources
from pullthrough.config import Config, load, parse
from pullthrough.config.command import main
from pullthrough.config.source_entries import ComposeSource, EcsSource, TextSource
from pullthrough.errors import ConfigError

HUB = """version: 1
rules:
  - prefix: dockerhub
    upstream: docker-hub
    credentials: ecr-pullthroughcache/docker-hub
  - prefix: ghcr
    upstream: github-container-registry
    credentials: ecr-pullthroughcache/ghcr
"""


def write_config(folder: Path, sources_yaml: str) -> Config:
    """A config file in `folder` with `sources_yaml` under warm.sources, loaded as the Lambda loads it."""
    path = folder / "pullthrough.yaml"
    path.write_text(HUB + "warm:\n  sources:\n" + sources_yaml, encoding="utf-8")
    return load(path)


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(HUB + "warm:\n  sources:\n" + text)
    return [str(p) for p in caught.value.problems]


# --- the config model ------------------------------------------------------------------------------------------


def test_each_kind_is_read_with_its_own_fields() -> None:
    config = parse(
        HUB
        + """warm:
  sources:
    - {kind: compose, files: [olake/docker-compose.yml], profiles: [connectors], variables: {TAG: v1}}
    - {kind: kubernetes, name: chart, files: [rendered.yaml]}
    - {kind: text, files: [images.txt]}
    - {kind: ecs, family_prefix: olake-}
    - {kind: ecs}
"""
    )
    compose, kube, text, ecs, every_ecs = config.warm.sources
    assert isinstance(compose, ComposeSource)
    assert compose.variables == {"TAG": "v1"}
    assert compose.label == "compose olake/docker-compose.yml"
    # Compose reads .env beside the file by default: that file ships too.
    assert compose.paths == ("olake/docker-compose.yml", "olake/.env")
    assert kube.label == "chart"
    assert isinstance(text, TextSource)
    assert text.label == "text images.txt"
    assert isinstance(ecs, EcsSource)
    assert ecs.label == "ecs olake-"
    assert ecs.paths == ()
    assert every_ecs.label == "ecs"


def test_an_unknown_kind_names_the_valid_ones_and_the_near_one() -> None:
    assert problems_of("    - {kind: txt, files: [a.txt]}") == [
        "<config>: warm.sources[0]: unknown kind 'txt' (did you mean 'text'?); valid: compose, kubernetes, text, "
        "ecs (got {kind: 'txt', files: ['a.txt']})"
    ]


def test_a_missing_kind_says_what_to_write() -> None:
    (problem,) = problems_of("    - {files: [a.txt]}")
    assert problem.startswith("<config>: warm.sources[0]: kind is required: one of compose, kubernetes, text, ecs")


def test_a_misspelt_field_is_named_with_the_fields_of_that_kind() -> None:
    found = problems_of("    - {kind: compose, files: [c.yml], profile: [x]}")
    assert found == [
        "<config>: warm.sources[0].profile: unknown field (did you mean 'profiles'?); valid here: name, files, kind, "
        "env_file, profiles, variables (got ['x'])"
    ]


@pytest.mark.parametrize("path", ["/etc/images.txt", "../images.txt", "lists/../../images.txt"])
def test_a_path_leaving_the_config_folder_is_refused(path: str) -> None:
    (problem,) = problems_of(f"    - {{kind: text, files: ['{path}']}}")
    assert problem.startswith("<config>: warm.sources[0].files[0]: the file ships in the config layer")
    assert f"(got '{path}')" in problem


def test_a_bad_family_prefix_names_the_ecs_rule() -> None:
    (problem,) = problems_of("    - {kind: ecs, family_prefix: 'olake ui'}")
    assert "warm.sources[0].family_prefix: a task definition family is 1 to 255 letters" in problem


def test_the_schema_offers_each_kind() -> None:
    schema = Config.model_json_schema()
    kinds = {
        schema["$defs"][name]["properties"]["kind"]["const"]
        for name in ("ComposeSource", "KubernetesSource", "TextSource", "EcsSource")
    }
    assert kinds == {"compose", "kubernetes", "text", "ecs"}


# --- the text source --------------------------------------------------------------------------------------------


def test_a_text_list_yields_each_line_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "images.txt").write_text(
        "# OLake connectors\nolakego/source-mysql:v0.1.8\n\n  olakego/source-postgres:v0.1.8   # pinned\n"
        "ghcr.io/datazip-inc/olake-ui:v0.2.0\n",
        encoding="utf-8",
    )
    config = write_config(tmp_path, "    - {kind: text, files: [lists/images.txt]}\n")
    reading = sources.read(config)
    assert reading.problems == []
    assert [(y.reference, y.source, y.place) for y in reading.references] == [
        ("docker.io/olakego/source-mysql:v0.1.8", "text lists/images.txt", "lists/images.txt:2"),
        ("docker.io/olakego/source-postgres:v0.1.8", "text lists/images.txt", "lists/images.txt:4"),
        ("ghcr.io/datazip-inc/olake-ui:v0.2.0", "text lists/images.txt", "lists/images.txt:5"),
    ]


def test_a_reference_into_the_cache_is_mapped_back_to_its_upstream(tmp_path: Path) -> None:
    (tmp_path / "images.txt").write_text(
        "111222333444.dkr.ecr.us-east-1.amazonaws.com/dockerhub/olakego/source-mysql:v0.1.8\n"
        "111222333444.dkr.ecr.us-east-1.amazonaws.com/ghcr/datazip-inc/olake-ui:v0.2.0\n"
        "111222333444.dkr.ecr.us-east-1.amazonaws.com/dockerhub/library/nginx\n",
        encoding="utf-8",
    )
    config = write_config(tmp_path, "    - {kind: text, files: [images.txt]}\n")
    assert [y.reference for y in sources.references(config)] == [
        "docker.io/olakego/source-mysql:v0.1.8",
        "ghcr.io/datazip-inc/olake-ui:v0.2.0",
        "docker.io/library/nginx:latest",  # no tag: what docker pull pulls
    ]


def test_each_problem_names_the_file_the_line_the_value_and_the_fix(tmp_path: Path) -> None:
    digest = "sha256:" + "a" * 64
    (tmp_path / "images.txt").write_text(f"quay.io/prometheus/node-exporter:v1.8.2\nnginx@{digest}\nNginx:1\n")
    config = write_config(tmp_path, "    - {kind: text, files: [images.txt, gone.txt]}\n")
    reading = sources.read(config)
    assert reading.references == []
    shown = [str(p) for p in reading.problems]
    assert shown[0] == (
        "images.txt:1: no rule caches quay.io images; add a rule with upstream: quay; or drop it from this source "
        "(got quay.io/prometheus/node-exporter:v1.8.2)"
    )
    assert shown[1].startswith("images.txt:2: a digest-only reference: ECR does not cache an image first pulled by")
    assert "(nginx:<tag>@sha256:...)" in shown[1]
    assert shown[2].startswith("images.txt:3: not an image reference: repository path 'Nginx' must be lower case")
    assert shown[3].startswith("gone.txt (source text images.txt): no such file next to the config")


def test_references_refuses_a_source_with_a_problem(tmp_path: Path) -> None:
    config = write_config(tmp_path, "    - {kind: text, files: [gone.txt]}\n")
    with pytest.raises(sources.SourceError) as caught:
        sources.references(config)
    assert "1 problem(s) in warm.sources" in str(caught.value)


def test_a_reference_named_twice_is_yielded_once_where_first_named(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("nginx:1.27\n")
    (tmp_path / "b.txt").write_text("docker.io/library/nginx:1.27\n")
    config = write_config(
        tmp_path, "    - {kind: text, files: [a.txt]}\n    - {kind: text, name: more, files: [b.txt]}\n"
    )
    reading = sources.read(config)
    assert len(reading.references) == 2  # pullthrough images shows every place
    assert [(y.source, y.place) for y in reading.unique()] == [("text a.txt", "a.txt:1")]


def test_ecs_sources_yield_nothing_without_a_reader_and_the_reader_s_answer_with_one(tmp_path: Path) -> None:
    config = write_config(tmp_path, "    - {kind: ecs, family_prefix: olake-}\n")
    assert sources.references(config) == []
    seen: list[EcsSource] = []

    def reader(source: EcsSource) -> sources.Reading:
        seen.append(source)
        return sources.Reading(references=[sources.Yielded("docker.io/olakego/ui:v1", source.label, "olake-ui:3 → ui")])

    assert sources.references(config, ecs=reader) == [
        sources.Yielded("docker.io/olakego/ui:v1", "ecs olake-", "olake-ui:3 → ui")
    ]
    assert seen == [config.warm.sources[0]]


def test_source_files_lists_what_the_config_layer_ships() -> None:
    config = parse(
        HUB
        + """warm:
  sources:
    - {kind: compose, files: [olake/docker-compose.yml, olake/override.yml]}
    - {kind: compose, files: [other.yml], env_file: olake/.env}
    - {kind: text, files: [images.txt]}
    - {kind: ecs}
"""
    )
    assert sources.source_files(config) == [
        "olake/docker-compose.yml",
        "olake/override.yml",
        "olake/.env",
        "other.yml",
        "images.txt",
    ]


def test_check_explains_the_source_images_and_exits_1_on_a_source_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "images.txt").write_text("nginx:1.27\nnginx@sha256:" + "c" * 64 + "\n")
    write_config(tmp_path, "    - {kind: text, name: extra, files: [images.txt]}\n")
    assert main(["--check", str(tmp_path / "pullthrough.yaml")]) == 1
    out, err = capsys.readouterr()
    assert "image docker.io/library/nginx -> dockerhub/library/nginx (rule dockerhub): 1.27" in out
    assert "from extra (images.txt:1)" in out
    assert err.startswith("warm.sources: images.txt:2: a digest-only reference")
