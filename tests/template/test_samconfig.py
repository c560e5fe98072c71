"""samconfig.toml: one environment per stage, each consistent with template.yaml's parameters."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

ENVIRONMENTS = {"default": "dev", "dev": "dev", "prod": "prod"}


@pytest.fixture(scope="module")
def samconfig(repo_root: Path) -> dict[str, Any]:
    return tomllib.loads((repo_root / "samconfig.toml").read_text(encoding="utf-8"))


def test_samconfig_is_version_0_1_with_the_three_environments(samconfig: dict[str, Any]) -> None:
    # Given samconfig.toml, Then it is the format SAM reads and names exactly default, dev and prod
    assert samconfig["version"] == 0.1
    assert set(samconfig) - {"version"} == set(ENVIRONMENTS)


@pytest.mark.parametrize(("environment", "stage"), ENVIRONMENTS.items())
def test_each_environment_builds_cached_lints_and_deploys_its_stage(
    samconfig: dict[str, Any], template: dict[str, Any], environment: str, stage: str
) -> None:
    # Given one environment of samconfig.toml
    sections = samconfig[environment]

    # Then builds are cached and parallel, validation lints, and the region is us-east-1
    assert sections["global"]["parameters"]["region"] == "us-east-1"
    assert sections["build"]["parameters"] == {"cached": True, "parallel": True}
    assert sections["validate"]["parameters"] == {"lint": True}

    # And deploys go to the stage's own stack, ask before changing it, and pass a Stage the template allows
    deploy = sections["deploy"]["parameters"]
    assert deploy["stack_name"] == f"pullthrough-{stage}"
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["confirm_changeset"] is True
    assert deploy["resolve_s3"] is True
    overrides = dict(pair.split("=", 1) for pair in deploy["parameter_overrides"].split())
    assert overrides == {"Stage": stage}
    assert stage in template["Parameters"]["Stage"]["AllowedValues"]
