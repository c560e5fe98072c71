"""The compose source on real files: OLake's project (seed 000) with its .env, profiles and extends; interpolation."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pullthrough import sources
from pullthrough.config import Config, parse
from pullthrough.sources.interpolation import InterpolationError, interpolate, parse_env_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"

RULES = """version: 1
rules:
  - {prefix: dockerhub, upstream: docker-hub, credentials: ecr-pullthroughcache/docker-hub}
  - {prefix: ghcr, upstream: github-container-registry, credentials: ecr-pullthroughcache/ghcr}
warm:
  sources:
"""


def config_with(source: str) -> Config:
    return parse(RULES + "    - " + source + "\n")


def olake(tmp_path: Path) -> Path:
    """A copy of the OLake fixture project to edit."""
    shutil.copytree(FIXTURES / "olake", tmp_path / "olake")
    return tmp_path


def places(reading: sources.Reading) -> dict[str, str]:
    return {item.place.split(" → ")[1]: item.reference for item in reading.references}


# --- OLake, as seed 000 runs it ---------------------------------------------------------------------------------


def test_olake_images_come_back_from_the_cache_to_docker_hub_with_the_env_file_versions() -> None:
    # Given OLake's compose file whose images all start with ${CONTAINER_REGISTRY_BASE}, which .env points at ECR
    config = config_with("{kind: compose, files: [olake/docker-compose.yml]}")

    # When the source is read without the connectors profile
    reading = sources.read(config, directory=FIXTURES)

    # Then every image is the upstream Docker Hub one (mapped back through rule dockerhub), at .env's versions
    assert places(reading) == {
        "olake-ui": "docker.io/olakego/ui:v0.2.3",
        "temporal": "docker.io/temporalio/auto-setup:1.22.3",
        "temporal-ui": "docker.io/temporalio/ui:2.16.2",
        "postgresql": "docker.io/library/postgres:13",
        "healthcheck-echo": "docker.io/library/busybox:1.36",
    }
    assert {item.source for item in reading.references} == {"compose olake/docker-compose.yml"}
    assert reading.problems == []
    # And the service built from source is noted, not a problem (it sits behind the inactive profile: not even that)
    assert reading.notes == []


def test_the_connectors_profile_adds_the_connectors_through_extends() -> None:
    config = config_with("{kind: compose, files: [olake/docker-compose.yml], profiles: [connectors]}")
    reading = sources.read(config, directory=FIXTURES)
    found = places(reading)
    assert found["source-mysql"] == "docker.io/olakego/source-mysql:v0.1.8"  # inherited from common.yml
    assert found["source-postgres"] == "docker.io/olakego/source-postgres:v0.1.8"  # its own image wins
    assert found["source-oracle"] == "docker.io/olakego/source-oracle:v0.1.8"  # extends in the same file
    assert "elasticsearch" not in found  # profile search is not active
    (note,) = reading.notes
    assert str(note) == (
        "olake/docker-compose.yml → olake-worker: not pulled, so nothing to warm "
        "(got built from source (build: without image:))"
    )


def test_compose_profiles_in_the_env_file_activate_profiles_when_the_source_names_none(tmp_path: Path) -> None:
    base = olake(tmp_path)
    env = base / "olake" / ".env"
    env.write_text(env.read_text() + "COMPOSE_PROFILES=search,other\n")
    reading = sources.read(config_with("{kind: compose, files: [olake/docker-compose.yml]}"), directory=base)
    assert places(reading)["elasticsearch"] == "docker.io/library/elasticsearch:7.17.10"
    assert "source-mysql" not in places(reading)


def test_config_variables_win_over_the_env_file() -> None:
    config = config_with(
        "{kind: compose, files: [olake/docker-compose.yml], variables: {OLAKE_UI_VERSION: v0.3.0, "
        "CONTAINER_REGISTRY_BASE: ghcr.io/datazip-inc}}"
    )
    found = places(sources.read(config, directory=FIXTURES))
    assert found["olake-ui"] == "ghcr.io/datazip-inc/olakego/ui:v0.3.0"


def test_without_the_env_file_the_defaults_name_docker_hub_directly(tmp_path: Path) -> None:
    base = olake(tmp_path)
    (base / "olake" / ".env").unlink()
    config = config_with("{kind: compose, files: [olake/docker-compose.yml], variables: {TEMPORAL_VERSION: '1.22.3'}}")
    reading = sources.read(config, directory=base)
    found = places(reading)
    # ${VAR:-default} when unset; ${OLAKE_UI_VERSION:-latest}
    assert found["olake-ui"] == "docker.io/olakego/ui:latest"
    assert found["temporal-ui"] == "docker.io/temporalio/ui:2.16.2"  # ${VAR-default}: unset takes the default
    # The database password is required only by the environment: not an image field, so not a problem here
    assert reading.problems == []


def test_an_unset_variable_in_an_image_names_the_variable_the_service_and_the_fix(tmp_path: Path) -> None:
    base = olake(tmp_path)
    (base / "olake" / ".env").unlink()
    reading = sources.read(config_with("{kind: compose, files: [olake/docker-compose.yml]}"), directory=base)
    (problem,) = reading.problems
    assert problem.location == "olake/docker-compose.yml → temporal"
    assert problem.message.startswith(
        "TEMPORAL_VERSION not set, read as empty (set it in the .env file or the source's variables); "
        "not an image reference: ':' must be followed by a tag"
    )
    assert problem.value.startswith("${CONTAINER_REGISTRY_BASE:-registry-1.docker.io}/temporalio/auto-setup:")


def test_a_required_variable_names_its_own_message(tmp_path: Path) -> None:
    base = olake(tmp_path)
    env = base / "olake" / ".env"
    env.write_text(env.read_text().replace("CONNECTOR_VERSION=v0.1.8", "CONNECTOR_VERSION="))
    config = config_with("{kind: compose, files: [olake/docker-compose.yml], profiles: [connectors]}")
    problems = [str(p) for p in sources.read(config, directory=base).problems]
    assert problems[0].startswith(
        "olake/docker-compose.yml → source-mysql: variable CONNECTOR_VERSION is unset or empty (pin a stable "
        "connector version); set it in the .env file or in the source's variables"
    )


def test_an_explicit_env_file_that_is_missing_is_a_problem() -> None:
    config = config_with("{kind: compose, files: [olake/docker-compose.yml], env_file: olake/prod.env}")
    problem = sources.read(config, directory=FIXTURES).problems[0]
    assert problem.location == "olake/prod.env (source compose olake/docker-compose.yml)"
    assert "no such file next to the config" in problem.message


def test_a_later_file_overrides_a_service_image(tmp_path: Path) -> None:
    base = olake(tmp_path)
    (base / "olake" / "override.yml").write_text("services:\n  olake-ui:\n    image: ghcr.io/datazip-inc/olake-ui:v9\n")
    config = config_with("{kind: compose, files: [olake/docker-compose.yml, olake/override.yml]}")
    reading = sources.read(config, directory=base)
    (ui,) = [item for item in reading.references if item.place.endswith("→ olake-ui")]
    assert (ui.reference, ui.place) == ("ghcr.io/datazip-inc/olake-ui:v9", "olake/override.yml → olake-ui")


@pytest.mark.parametrize(
    ("compose", "message"),
    [
        ("services:\n  web:\n    image: [nginx\n", "YAML syntax"),
        ("services:\n  web:\n    image: nginx\n  web:\n    image: redis\n", "duplicate key 'web'"),
        ("version: '3'\n", "not a Compose file: it needs a services: mapping"),
        ("services:\n  web:\n    extends: {service: base}\n", "extends names service 'base', which"),
        ("services:\n  web:\n    extends: {service: web}\n", "a service extends itself somewhere"),
        ("services:\n  web:\n    extends: {file: ../x.yml, service: a}\n", "outside the config's folder"),
        ("services:\n  web:\n    environment: {A: b}\n", "a service needs image: or build:"),
        ("services:\n  web:\n    image: nginx@sha256:" + "0" * 64 + "\n", "a digest-only reference"),
        ("services:\n  web:\n    image: quay.io/org/app:1\n", "no rule caches quay.io images"),
    ],
)
def test_broken_compose_files_give_one_problem_with_the_place(tmp_path: Path, compose: str, message: str) -> None:
    (tmp_path / "docker-compose.yml").write_text(compose)
    reading = sources.read(config_with("{kind: compose, files: [docker-compose.yml]}"), directory=tmp_path)
    (problem,) = reading.problems
    assert problem.location.startswith("docker-compose.yml")
    assert message in problem.message


def test_pull_policy_build_is_noted_not_warmed(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  app:\n    image: ghcr.io/org/app:dev\n    build: .\n    pull_policy: build\n"
        "  cache:\n    image: ghcr.io/org/cache:1\n    build: ./cache\n"
    )
    reading = sources.read(config_with("{kind: compose, files: [docker-compose.yml]}"), directory=tmp_path)
    # compose-spec: with image and build, Compose pulls first unless pull_policy says build
    assert [item.reference for item in reading.references] == ["ghcr.io/org/cache:1"]
    assert [note.value for note in reading.notes] == ["pull_policy: build"]


# --- interpolation, as compose-spec defines it ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}/b", "x/b"),
        ("$A:1", "x:1"),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${UNSET:-${A}y}", "xy"),
        ("${A:+r}", "r"),
        ("${EMPTY:+r}", ""),
        ("${EMPTY+r}", "r"),
        ("$$A", "$A"),
        ("cost: 5$", "cost: 5$"),
    ],
)
def test_interpolation_follows_the_compose_spec(text: str, expected: str) -> None:
    assert interpolate(text, {"A": "x", "EMPTY": ""}).value == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${UNSET:?give it}", "variable UNSET is unset or empty (give it)"),
        ("${EMPTY:?}", "variable EMPTY is unset or empty (required)"),
        ("${UNSET?}", "variable UNSET is unset (required)"),
        ("${A", "'${' without its closing '}'"),
        ("${1A}", "names no variable"),
        ("${A:=x}", "unknown operator after A"),
    ],
)
def test_interpolation_errors_say_what_to_set(text: str, message: str) -> None:
    with pytest.raises(InterpolationError, match=re.escape(message)):
        interpolate(text, {"A": "x", "EMPTY": ""})


def test_required_but_empty_passes_the_question_mark_form() -> None:
    assert interpolate("${EMPTY?}", {"EMPTY": ""}).value == ""


def test_unset_variables_are_named() -> None:
    assert interpolate("${REGISTRY}/app:${TAG}", {}).unset == ["REGISTRY", "TAG"]


def test_the_env_file_format() -> None:
    text = (FIXTURES / "olake" / ".env").read_text()
    assert parse_env_file(text, {}) == {
        "CONTAINER_REGISTRY_BASE": "111222333444.dkr.ecr.us-east-1.amazonaws.com/dockerhub",
        "OLAKE_UI_VERSION": "v0.2.3",
        "CONNECTOR_VERSION": "v0.1.8",
        "TEMPORAL_VERSION": "1.22.3",
        "POSTGRES_PASSWORD": "pa$$word#not-a-comment",  # single quotes: literal
    }
    assert parse_env_file('A=1\nB="${A}-two\\n"\nC=$A#x\nD=${A} # note\n', {}) == {
        "A": "1",
        "B": "1-two\n",
        "C": "1#x",
        "D": "1",
    }
