"""`make demo` end to end: the README's first command runs the whole system and shows every report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo_output(docker_registry: str) -> str:
    # Given a fresh process (its own moto and sandbox), When the demo runs as `make demo` runs it
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PULLTHROUGH_"))}
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_deploy_creates_every_rule_and_reports_it(demo_output: str) -> None:
    # Then every rule of the example config is created and a rules report arrives, with the config's subject prefix
    assert "pull-through cache rules now in the account: ['docker-hub', 'ecr-public', 'ghcr', 'k8s', 'quay']" in (
        demo_output
    )
    assert re.search(r"Subject: OK \[ACME\] rules prod/us-east-1: 7 created", demo_output)


def test_the_warm_run_accounts_for_every_image_and_reports_once(demo_output: str) -> None:
    # Then the warm report counts every planned image as warmed, exactly one warm report is published
    warm_subjects = re.findall(r"Subject: \S+ \[ACME\] warm prod/us-east-1: (.*)", demo_output)
    assert warm_subjects == ["11 warmed"]


def test_the_cache_serves_every_warmed_platform_to_skopeo_with_the_upstream_down(demo_output: str) -> None:
    # Then every wanted platform of every warmed tag pulls from the cache while the upstream is stopped
    match = re.search(r"(\d+) platform image\(s\) pulled by skopeo with the upstream down, (\d+) failed", demo_output)
    assert match is not None
    assert (int(match.group(1)), int(match.group(2))) == (20, 0)


def test_the_operator_sees_status_and_an_empty_plan_after_the_warm_run(demo_output: str) -> None:
    # Then `pullthrough status` finds every image current in ECR and the run closed, and `pullthrough plan` has
    # nothing to apply: both exit 0, as the README's Operate section says
    status = demo_output.split("$ pullthrough status", 1)[1].split("$ pullthrough plan", 1)[0]
    assert "Images (11):" in status
    assert status.count("(current)") == 11
    assert "closed 11/11 (11 warmed)" in status
    assert status.rstrip().endswith("exit status 0")
    plan = demo_output.split("$ pullthrough plan", 1)[1].split("$ pullthrough pull-config", 1)[0]
    assert "Rules and templates: 0 to change" in plan
    assert "Images: 0 to pull through ECR, 0 upstream pull(s)" in plan
    assert "exit status 0" in plan


def test_images_pull_by_their_upstream_names_through_the_generated_registries_conf(demo_output: str) -> None:
    # Then `pullthrough pull-config` wrote every consumer artefact, and with only its registries.conf skopeo pulls
    # images by the names people write while the upstream is down
    for written in (".env", "registries.conf", "certs.d/docker.io/hosts.toml", "kyverno-policy.yaml"):
        assert f"pull-config/{written}" in demo_output
    pulls = r"skopeo copy docker://(\S+) \(\S+\) with only the generated registries.conf: (\w+)"
    by_name = re.findall(pulls, demo_output)
    assert ("docker.io/olakego/source-mysql:v0.1.8", "pulled") in by_name
    assert [outcome for _, outcome in by_name] == ["pulled"] * 3  # one named tag per rule that has one


def test_a_consumers_failed_pull_is_reported_from_ecrs_event(demo_output: str) -> None:
    # Then the typo'd pull was refused, and one pull-failures report names it with ECR's failure code
    assert "skopeo: refused, as it should be" in demo_output
    assert re.search(r"Subject: FAILED \[ACME\] pulls prod/us-east-1: 1 of 1 failed", demo_output)
    assert "docker-hub/library/nginx:1.99-typo" in demo_output
    assert "ImageNotFound" in demo_output


def test_a_bad_token_is_refused_and_a_good_one_promoted(demo_output: str) -> None:
    bad, good = demo_output.split("Rotation with a GOOD token", 1)
    # Then the bad token stops at testSecret and the old version stays current, with a FAILED report
    assert "testSecret: refused" in bad
    assert "(the previous one, kept)" in bad
    assert re.search(r"Subject: FAILED \[ACME\] credentials prod/us-east-1", bad)
    # And the good token goes through all four steps and becomes current, with an OK report
    assert "finishSecret: done" in good
    assert "(the new one)" in good
    assert re.search(r"Subject: OK \[ACME\] credentials prod/us-east-1", good)


def test_no_token_is_printed(demo_output: str) -> None:
    # Then neither the sandbox's tokens nor the rotated ones appear anywhere in what a person sees
    assert not re.search(r"dckr_pat_[A-Za-z0-9_-]{8,}", demo_output)
