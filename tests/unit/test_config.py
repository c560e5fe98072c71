"""The config document: every problem at once with its location, value and fix; the example; the schema."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pullthrough.config import Config, load, parse
from pullthrough.config import command as config_command
from pullthrough.config.command import schema_text
from pullthrough.errors import ConfigError, Problem
from pullthrough.reference import ImageReference

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "pullthrough.yaml"
SCHEMA = ROOT / "config" / "pullthrough.schema.json"
TOKEN = "dckr_pat_2b3e36beeb386dfdaacb9b46004ccb7c"

HUB = """version: 1
rules:
  - prefix: docker-hub
    upstream: docker-hub
    credentials: ecr-pullthroughcache/docker-hub
"""


def hub(extra: str) -> str:
    """A valid one-rule document (Docker Hub) with `extra` appended."""
    return HUB + extra


def problems_of(text: str) -> list[str]:
    """The problems parse() reports for `text`, without the source name in front."""
    with pytest.raises(ConfigError) as caught:
        parse(text, source="cfg.yaml")
    assert all(isinstance(p, Problem) for p in caught.value.problems)
    return [str(p).removeprefix("cfg.yaml: ") for p in caught.value.problems]


BAD_DOCUMENTS = [
    pytest.param(
        "version: 2\nrules: []\n",
        [
            "version: this Pullthrough reads version: 1 (got 2)",
        ],
        id="version",
    ),
    pytest.param(
        "rules: []\n",
        [
            "version: required: the version of this document's format; write version: 1. (got nothing)",
        ],
        id="version-missing",
    ),
    pytest.param(
        "version: 1\nrules: []\nrule: []\n",
        [
            (
                "rule: unknown field (did you mean 'rules'?); valid here: version, stack, rules, warm, "
                "notifications, prune, organization (got [])"
            ),
        ],
        id="unknown-top-field",
    ),
    pytest.param(
        "version: 1\nrules:\n  - {prefix: DockerHub, upstream: quay}\n",
        [
            (
                "rules[0].prefix: a prefix must be lower-case letters and digits in '/'-separated parts, "
                "joined by '.', '_', '__' or dashes, like docker-hub or cache/ghcr (got 'DockerHub')"
            ),
        ],
        id="prefix-case",
    ),
    pytest.param(
        "version: 1\nrules:\n  - {prefix: " + "a" * 31 + ", upstream: quay}\n",
        [
            (
                "rules[0].prefix: a prefix must be 2 to 30 characters (ECR's limit), not 31 (got "
                "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')"
            ),
        ],
        id="prefix-long",
    ),
    pytest.param(
        "version: 1\nrules:\n  - {prefix: quay/, upstream: quay}\n",
        [
            "rules[0].prefix: drop the trailing '/': ECR always adds one (write 'quay') (got 'quay/')",
        ],
        id="prefix-slash",
    ),
    pytest.param(
        "version: 1\nrules:\n  - {prefix: hub, upstream: dockerhub}\n",
        [
            (
                "rules[0].upstream: unknown upstream (did you mean 'docker-hub'?); valid: "
                "azure-container-registry, chainguard, docker-hub, ecr, ecr-public, "
                "github-container-registry, gitlab-container-registry, k8s, quay (got 'dockerhub')"
            ),
        ],
        id="upstream-unknown",
    ),
    pytest.param(
        "version: 1\nrules:\n  - {prefix: hub, upstream: docker-hub}\n",
        [
            (
                "rules[0].credentials: upstream docker-hub needs credentials: a Secrets Manager secret "
                "named ecr-pullthroughcache/... holding username and accessToken (got nothing)"
            ),
        ],
        id="credentials-missing",
    ),
    pytest.param(
        "version: 1\nrules:\n  - {prefix: quay, upstream: quay, credentials: ecr-pullthroughcache/quay}\n",
        [
            (
                "rules[0].credentials: upstream quay takes no credentials (it is public); remove "
                "credentials (got 'ecr-pullthroughcache/quay')"
            ),
        ],
        id="credentials-forbidden",
    ),
    pytest.param(
        "version: 1\nrules:\n  - {prefix: hub, upstream: docker-hub, credentials: dockerhub-credentials}\n",
        [
            (
                "rules[0].credentials: ECR only reads secrets whose name starts with "
                "ecr-pullthroughcache/; name it like ecr-pullthroughcache/docker-hub (got "
                "'dockerhub-credentials')"
            ),
        ],
        id="credentials-prefix",
    ),
    pytest.param(
        (
            "version: 1\nrules:\n  - {prefix: hub, upstream: docker-hub, "
            "credentials: 'arn:aws:secretsmanager:us-east-1:111122223333:secret:ecr-pullthroughcache/hub-AbCdEf'}\n"
        ),
        [
            (
                "rules[0].credentials: give the secret's name (ecr-pullthroughcache/...), not its ARN "
                "(got 'arn:aws:secretsmanager:us-east-1:111122223333:secret:ecr...)"
            ),
        ],
        id="credentials-arn",
    ),
    pytest.param(
        (
            "version: 1\nrules:\n  - {prefix: hub, upstream: docker-hub, "
            "credentials: dckr_pat_2b3e36beeb386dfdaacb9b46004ccb7c}\n"
        ),
        [
            (
                "rules[0].credentials: ECR only reads secrets whose name starts with "
                "ecr-pullthroughcache/; name it like ecr-pullthroughcache/docker-hub (got '<hidden: 41 "
                "characters that look like a token>')"
            ),
        ],
        id="credentials-token",
    ),
    pytest.param(
        (
            "version: 1\nrules:\n  - {prefix: acr, upstream: azure-container-registry, "
            "credentials: ecr-pullthroughcache/acr}\n"
        ),
        [
            (
                "rules[0].url: upstream azure-container-registry needs url: its registry host, like "
                "myregistry.azurecr.io (got nothing)"
            ),
        ],
        id="azure-url-missing",
    ),
    pytest.param(
        (
            "version: 1\nrules:\n  - {prefix: acr, upstream: azure-container-registry, url: my-acr.azurecr.io, "
            "credentials: ecr-pullthroughcache/acr}\n"
        ),
        [
            (
                "rules[0].url: not a Microsoft Azure Container Registry host; expected the form "
                "myregistry.azurecr.io (got 'my-acr.azurecr.io')"
            ),
        ],
        id="azure-url-bad",
    ),
    pytest.param(
        "version: 1\nrules:\n  - {prefix: quay, upstream: quay, url: quay.example.com}\n",
        [
            "rules[0].url: quay is always quay.io; remove url (got 'quay.example.com')",
        ],
        id="url-fixed",
    ),
    pytest.param(
        "version: 1\nrules:\n  - {prefix: quay, upstream: quay, custom_role_arn: 'arn:aws:iam::111122223333:role/x'}\n",
        [
            (
                "rules[0].custom_role_arn: custom_role_arn is only for upstream ecr, not quay; remove it "
                "(got 'arn:aws:iam::111122223333:role/x')"
            ),
        ],
        id="role-wrong-upstream",
    ),
    pytest.param(
        (
            "version: 1\nrules:\n  - {prefix: shared, upstream: ecr, "
            "url: 111122223333.dkr.ecr.eu-west-1.amazonaws.com, custom_role_arn: 'role/x'}\n"
        ),
        [
            "rules[0].custom_role_arn: must be an IAM role ARN: arn:aws:iam::<account>:role/<name> (got 'role/x')",
        ],
        id="role-bad",
    ),
    pytest.param(
        "version: 1\nrules:\n  - {prefix: quay, upstream: quay, upstream_prefix: prometheus}\n",
        [
            (
                "rules[0].upstream_prefix: ECR supports an upstream repository prefix only for upstream "
                "ecr (ECR to ECR), not quay (got 'prometheus')"
            ),
        ],
        id="upstream-prefix-quay",
    ),
    pytest.param(
        "version: 1\nrules:\n  - {prefix: ROOT, upstream: quay}\n",
        [
            (
                "rules[0]: prefix ROOT is only for upstream ecr (ECR to ECR); give quay a prefix (got "
                "{prefix: 'ROOT', upstream: 'quay'})"
            ),
        ],
        id="root-quay",
    ),
    pytest.param(
        (
            "version: 1\nrules:\n  - prefix: hub\n    upstream: docker-hub\n"
            "    credentials: {secret: ecr-pullthroughcache/hub, "
            "rotation: docker-hub-api}\n"
        ),
        [
            (
                "rules[0].credentials.admin_secret: rotation docker-hub-api needs admin_secret: the name "
                "of a secret with Docker Hub admin credentials, e.g. pullthrough/docker-hub-admin (got "
                "nothing)"
            ),
        ],
        id="rotation-admin-missing",
    ),
    pytest.param(
        (
            "version: 1\nrules:\n  - prefix: hub\n    upstream: docker-hub\n"
            "    credentials: {secret: ecr-pullthroughcache/hub, "
            "rotation: docker-hub-api, admin_secret: ecr-pullthroughcache/admin}\n"
        ),
        [
            (
                "rules[0].credentials.admin_secret: admin credentials must not live under "
                "ecr-pullthroughcache/ (ECR can read those); use e.g. pullthrough/docker-hub-admin (got "
                "'ecr-pullthroughcache/admin')"
            ),
        ],
        id="admin-under-prefix",
    ),
    pytest.param(
        (
            "version: 1\nrules:\n  - prefix: hub\n    upstream: docker-hub\n"
            "    credentials: {secret: ecr-pullthroughcache/hub, "
            "rotation: docker-hub-api, admin_secret: ops/hub-admin}\n"
        ),
        [
            (
                "rules[0].credentials.admin_secret: admin credentials must live under pullthrough/, the only "
                "admin secrets the rotation function may read; use e.g. pullthrough/docker-hub-admin (got "
                "'ops/hub-admin')"
            ),
        ],
        id="admin-outside-pullthrough",
    ),
    pytest.param(
        (
            "version: 1\nrules:\n  - prefix: ghcr\n    upstream: github-container-registry\n"
            "    credentials: {secret: ecr-pullthroughcache/ghcr, "
            "rotation: docker-hub-api, admin_secret: pullthrough/admin}\n"
        ),
        [
            (
                "rules[0].credentials: rotation: docker-hub-api only works with upstream docker-hub, not "
                "github-container-registry (got {secret: 'ecr-pullthroughcache/ghcr', rotation: "
                "'docker-h...)"
            ),
        ],
        id="rotation-ghcr",
    ),
    pytest.param(
        (
            "version: 1\nrules:\n  - prefix: hub\n    upstream: docker-hub\n"
            "    credentials: {secret: ecr-pullthroughcache/hub, "
            "expires: next year}\n"
        ),
        [
            "rules[0].credentials.expires: must be a date written YYYY-MM-DD (got 'next year')",
        ],
        id="expires-bad",
    ),
    pytest.param(
        hub("    template: {tag_mutability: IMMUTABLE_WITH_EXCLUSION}\n"),
        [
            (
                "rules[0].template.mutability_exclusions: IMMUTABLE_WITH_EXCLUSION needs 1 to 5 exclusion"
                " filters, e.g. [latest, dev-*] (got nothing)"
            ),
        ],
        id="exclusions-missing",
    ),
    pytest.param(
        hub("    template: {tag_mutability: MUTABLE, mutability_exclusions: [latest]}\n"),
        [
            (
                "rules[0].template.mutability_exclusions: exclusions only apply to MUTABLE_WITH_EXCLUSION"
                " or IMMUTABLE_WITH_EXCLUSION, not MUTABLE (got ['latest'])"
            ),
        ],
        id="exclusions-unwanted",
    ),
    pytest.param(
        hub("    template: {tag_mutability: immutable}\n"),
        [
            (
                "rules[0].template.tag_mutability: must be one of 'MUTABLE', 'IMMUTABLE', "
                "'MUTABLE_WITH_EXCLUSION' or 'IMMUTABLE_WITH_EXCLUSION' (got 'immutable')"
            ),
        ],
        id="mutability-typo",
    ),
    pytest.param(
        hub("    template: {encryption: {type: KMS, key: 'arn:aws:kms:us-east-1:111122223333:alias/ecr'}}\n"),
        [
            (
                "rules[0].template.encryption.key: repository creation templates need the key's full ARN "
                "(...:key/<id>), not an alias (got 'arn:aws:kms:us-east-1:111122223333:alias/ecr')"
            ),
        ],
        id="kms-alias",
    ),
    pytest.param(
        hub(
            "    template: {encryption: {type: AES256, key: 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab'}}\n"
        ),
        [
            (
                "rules[0].template.encryption.key: a key is only used with type KMS or KMS_DSSE; remove "
                "it or set type: KMS (got 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab')"
            ),
        ],
        id="aes-key",
    ),
    pytest.param(
        hub("    template: {lifecycle: {}}\n"),
        [
            "rules[0].template.lifecycle: set keep_last_tags or expire_untagged_days, or remove lifecycle (got {})",
        ],
        id="lifecycle-empty",
    ),
    pytest.param(
        hub("    template: {lifecycle: {keep_last_tags: 0}}\n"),
        [
            "rules[0].template.lifecycle.keep_last_tags: must be at least 1 (got 0)",
        ],
        id="lifecycle-zero",
    ),
    pytest.param(
        hub("    template: {tags: {'aws:owner': me}}\n"),
        [
            (
                "rules[0].template.tags: tag keys starting with aws: are reserved by AWS: aws:owner (got "
                "{aws:owner: 'me'})"
            ),
        ],
        id="tags-reserved",
    ),
    pytest.param(
        hub("    template: {tags: {cost-center: 4711}}\n"),
        [
            (
                "rules[0].template.tags.cost-center: YAML read this as a number; write it in quotes (e.g."
                ' "1.10") to keep it text (got 4711)'
            ),
        ],
        id="tags-number",
    ),
    pytest.param(
        hub("warm: {schedule: every 6 hours}\n"),
        [
            (
                "warm.schedule: must be rate(N unit) or cron(6 fields), like rate(6 hours) or cron(0 3 * "
                "* ? *) (got 'every 6 hours')"
            ),
        ],
        id="schedule",
    ),
    pytest.param(
        hub("warm:\n  schedule: cron(0 3 * * ?)\n"),
        [
            (
                "warm.schedule: a cron expression has 6 fields (minutes hours day-of-month month "
                "day-of-week year), not 5, like cron(0 3 * * ? *) (got 'cron(0 3 * * ?)')"
            ),
        ],
        id="cron-fields",
    ),
    pytest.param(
        hub("warm: {schedule: cron(0 3 * * * *)}\n"),
        [
            (
                "warm.schedule: exactly one of day-of-month (3rd field) and day-of-week (5th field) must "
                "be ? (got 'cron(0 3 * * * *)')"
            ),
        ],
        id="cron-question",
    ),
    pytest.param(
        hub("warm: {platforms: [linux/amd46]}\n"),
        [
            (
                "warm.platforms[0]: unknown architecture 'amd46' (did you mean 'amd64'?); e.g. amd64 or "
                "arm64 (got 'linux/amd46')"
            ),
        ],
        id="platform-typo",
    ),
    pytest.param(
        hub("warm: {budget_share: 1.5}\n"),
        [
            "warm.budget_share: must be at most 1 (got 1.5)",
        ],
        id="budget",
    ),
    pytest.param(
        hub("warm: {budget_share: [50]}\n"),
        ["warm.budget_share: must be a number (got [50])"],
        id="budget-list",
    ),
    pytest.param(
        hub("warm: {budget_share: 50%}\n"),
        ["warm.budget_share: write a share between 0 and 1, not a percentage: 50% is 0.5 (got '50%')"],
        id="budget-percent",
    ),
    pytest.param(
        hub("warm: {budget_share: 50}\n"),
        ["warm.budget_share: must be at most 1 (a share, not a percentage: for 50% write 0.5) (got 50)"],
        id="budget-fifty",
    ),
    pytest.param(
        hub("warm: {images: [nginx]}\n"),
        [
            (
                "warm.images[0]: nothing to warm: give a tag (nginx:<tag>) or, in the object form, tags, "
                "tag_pattern or latest ({image: nginx, latest: 3}) (got 'nginx')"
            ),
        ],
        id="image-no-tag",
    ),
    pytest.param(
        hub("warm: {images: ['nginx@sha256:" + "a" * 64 + "']}\n"),
        [
            (
                "warm.images[0]: ECR does not cache an image first pulled by digest; give the tag too "
                "(nginx:<tag>@sha256:...) (got 'nginx@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...)"
            ),
        ],
        id="image-digest-only",
    ),
    pytest.param(
        "version: 1\nrules: [{prefix: ghcr, upstream: github-container-registry, credentials: ecr-pullthroughcache/g}]"
        "\n"
        "warm: {images: [ghcr.io/fluxcd/source-controller]}\n",
        [
            (
                "warm.images[0]: nothing to warm: give a tag (ghcr.io/fluxcd/source-controller:<tag>) or, in the "
                "object form, tags, tag_pattern or latest ({image: ghcr.io/fluxcd/source-controller, latest: 3}) "
                "(got 'ghcr.io/fluxcd/source-controller')"
            ),
        ],
        id="image-no-tag-shows-the-image-at-hand",
    ),
    pytest.param(
        hub("warm: {images: [{image: olakego/source-mysql}]}\n"),
        [
            (
                "warm.images[0]: nothing to warm: give a tag (olakego/source-mysql:<tag>) or, in the object form, "
                "tags, tag_pattern or latest ({image: olakego/source-mysql, latest: 3}) "
                "(got {image: 'olakego/source-mysql'})"
            ),
        ],
        id="image-object-nothing",
    ),
    pytest.param(
        hub("warm: {images: ['olakego/Source-MySQL:v0.1.8']}\n"),
        [
            (
                "warm.images[0]: repository path 'olakego/Source-MySQL' must be lower case (write "
                "'olakego/source-mysql') (got 'olakego/Source-MySQL:v0.1.8')"
            ),
        ],
        id="image-bad-ref",
    ),
    pytest.param(
        hub("warm: {images: [{image: nginx, tags: [1.20]}]}\n"),
        [
            (
                'warm.images[0].tags[0]: YAML read this as a number; write it in quotes (e.g. "1.10") to '
                "keep it text (got 1.2)"
            ),
        ],
        id="tags-float",
    ),
    pytest.param(
        hub("warm: {images: [{image: nginx, tag_pattern: '^1.(27'}]}\n"),
        [
            (
                "warm.images[0].tag_pattern: not a valid Python regular expression: missing ), "
                "unterminated subpattern at position 3 (got '^1.(27')"
            ),
        ],
        id="pattern-bad",
    ),
    pytest.param(
        hub("warm: {images: [{image: nginx, latest: 0}]}\n"),
        [
            "warm.images[0].latest: must be at least 1 (got 0)",
        ],
        id="latest-zero",
    ),
    pytest.param(
        hub("warm: {images: [{image: nginx, latest: true}]}\n"),
        ["warm.images[0].latest: YAML read this as true/false; write a whole number, e.g. 3 (got true)"],
        id="latest-true",
    ),
    pytest.param(
        hub("warm: {images: [{image: nginx, latest: 2.0}]}\n"),
        ["warm.images[0].latest: must be a whole number (got 2.0)"],
        id="latest-float",
    ),
    pytest.param(
        hub("warm: {images: [{image: nginx, tag_pattern: '(a+)+$'}]}\n"),
        [
            "warm.images[0].tag_pattern: a quantifier on a lone quantified group, like (a+)+ or (a*)*, matches what "
            "the inner one alone matches and stalls backtracking regex engines on a long tag: keep one quantifier, "
            "e.g. (a+)+ -> a+ (got '(a+)+$')"
        ],
        id="pattern-catastrophic",
    ),
    pytest.param(
        hub("warm: {images: ['ghcr.io/fluxcd/source-controller:v1.4.1']}\n"),
        [
            (
                "warm.images[0]: no rule caches ghcr.io images; add a rule with upstream: "
                "github-container-registry (got 'ghcr.io/fluxcd/source-controller:v1.4.1')"
            ),
        ],
        id="no-rule-ghcr",
    ),
    pytest.param(
        hub("warm: {images: ['myregistry.azurecr.io/app:v1']}\n"),
        [
            (
                "warm.images[0]: no rule caches myregistry.azurecr.io images; add a rule with upstream: "
                "azure-container-registry and url: myregistry.azurecr.io (got "
                "'myregistry.azurecr.io/app:v1')"
            ),
        ],
        id="no-rule-azure",
    ),
    pytest.param(
        hub("warm: {images: ['gcr.io/distroless/static:nonroot']}\n"),
        [
            (
                "warm.images[0]: ECR pull-through cache cannot cache images from gcr.io; it caches "
                "cgr.dev, docker.io, ghcr.io, public.ecr.aws, quay.io, registry.gitlab.com, "
                "registry.k8s.io, <name>.azurecr.io and <account>.dkr.ecr.<region>.amazonaws.com (got "
                "'gcr.io/distroless/static:nonroot')"
            ),
        ],
        id="unsupported-registry",
    ),
    pytest.param(
        hub(
            "  - prefix: hub-team\n    upstream: docker-hub\n    credentials: ecr-pullthroughcache/hub-team\n"
            "warm: {images: ['nginx:1.27']}\n"
        ),
        [
            (
                "warm.images[0]: ambiguous: rules 'docker-hub' and 'hub-team' both cache docker.io "
                "images; set rule: to one of them (got 'docker.io/library/nginx:1.27')"
            ),
        ],
        id="ambiguous",
    ),
    pytest.param(
        hub("warm: {images: [{image: nginx:1.27, rule: dockerhub}]}\n"),
        [
            "warm.images[0].rule: no rule has prefix 'dockerhub'; prefixes: docker-hub (got 'dockerhub')",
        ],
        id="pin-unknown",
    ),
    pytest.param(
        hub("  - {prefix: quay, upstream: quay}\nwarm: {images: [{image: nginx:1.27, rule: quay}]}\n"),
        [
            (
                "warm.images[0].rule: rule 'quay' does not cache docker.io/library/nginx: it caches Quay "
                "(quay.io); rule 'docker-hub' does (got 'quay')"
            ),
        ],
        id="pin-wrong",
    ),
    pytest.param(
        hub("  - {prefix: docker-hub, upstream: quay}\n"),
        [
            (
                "rules[1].prefix: duplicate: rules[0] already uses this prefix; each rule needs its own "
                "(got 'docker-hub')"
            ),
        ],
        id="duplicate-prefix",
    ),
    pytest.param(
        hub("  - {prefix: docker-hub/quay, upstream: quay}\n"),
        [
            (
                "rules[1].prefix: nests inside rules[0].prefix 'docker-hub': a repository "
                "docker-hub/quay/... would match both rules; use prefixes that do not contain one another"
                " (got 'docker-hub/quay')"
            ),
        ],
        id="nested-prefix",
    ),
    pytest.param(
        hub("notifications: {success: sometimes}\n"),
        [
            "notifications.success: must be one of 'full', 'summary' or 'off' (got 'sometimes')",
        ],
        id="success",
    ),
    pytest.param(
        hub("notifications: {success: on}\n"),
        [
            "notifications.success: must be one of 'full', 'summary' or 'off' (got true)",
        ],
        id="success-on",
    ),
    pytest.param(
        "version: 1\nrules:\n  - prefix: hub\n   upstream: quay\n",
        [
            (
                "line 4, column 4: YAML syntax: while parsing a block collection; expected <block end>, "
                "but found '<block mapping start>' (check the indentation, and quote values holding : { }"
                " [ ] # or ?) (got 'upstream: quay')"
            ),
        ],
        id="yaml-syntax",
    ),
    pytest.param(
        "version: 1\nrules: []\nrules: []\n",
        [
            "line 3, column 1: YAML syntax: while reading a mapping; duplicate key 'rules' (got 'rules: []')",
        ],
        id="yaml-duplicate",
    ),
    pytest.param(
        "- version: 1\n",
        [
            "the document must be a mapping (version: 1, rules: ...) (got [{version: 1}])",
        ],
        id="list-document",
    ),
    pytest.param(
        "# nothing here\n",
        [
            "the document is empty (got nothing)",
        ],
        id="empty",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_DOCUMENTS)
def test_a_bad_document_gets_exactly_these_problems(text: str, expected: list[str]) -> None:
    # Given a document with one mistake
    # When it is parsed
    # Then the problem names the location, says what would be valid, and shows the value
    assert problems_of(text) == expected


def test_the_bad_document_table_is_large_enough() -> None:
    assert len(BAD_DOCUMENTS) >= 20


def test_every_problem_in_a_document_is_listed_at_once() -> None:
    # Given a document with mistakes in every section, including two in one rule
    text = """version: 1
stack: prod
rules:
  - prefix: docker-hub
    upstream: docker-hub
    credentials: docker-hub-creds
    template:
      lifecycle: {keep_last_tags: 0}
  - prefix: quay
    upstream: quay
    credentials: ecr-pullthroughcache/quay
  - prefix: quay
    upstream: k8s
warm:
  schedule: rate(0 hours)
  images:
    - nginx:1.27
    - ghcr.io/fluxcd/source-controller:v1.4.1
    - image: registry.k8s.io/pause
      latest: many
notifications:
  success: loud
"""
    # When it is parsed
    found = problems_of(text)
    # Then one ConfigError lists them all, in document order, structural ones first
    assert [p.split(": ", 1)[0] for p in found] == [
        "rules[0].credentials",
        "rules[0].template.lifecycle.keep_last_tags",
        "rules[1].credentials",
        "warm.schedule",
        "warm.images[2].latest",
        "notifications.success",
        "rules[2].prefix",
        "warm.images[1]",
    ]
    assert found[-2] == (
        "rules[2].prefix: duplicate: rules[1] already uses this prefix; each rule needs its own (got 'quay')"
    )
    assert found[-1].startswith("warm.images[1]: no rule caches ghcr.io images; add a rule with upstream: ")


def test_a_broken_rule_does_not_make_its_images_look_unresolved() -> None:
    # Given a GHCR rule with a bad prefix and an image it would cache
    text = """version: 1
rules:
  - {prefix: GHCR, upstream: github-container-registry, credentials: ecr-pullthroughcache/ghcr}
warm:
  images: ['ghcr.io/org/app:v1']
"""
    # When it is parsed
    # Then only the prefix is reported: "add a rule" would send the user the wrong way
    assert [p.split(":", 1)[0] for p in problems_of(text)] == ["rules[0].prefix"]


def test_a_misspelt_upstream_is_one_problem_not_one_per_image() -> None:
    # Given a rule whose upstream is misspelt and three Docker Hub images that depend on it
    text = """version: 1
rules:
  - {prefix: docker-hub, upstream: dockerhub}
warm:
  images: ['docker.io/library/alpine:3.20', 'docker.io/library/nginx:1.27', 'docker.io/library/redis:7.4']
"""
    # When it is parsed
    found = problems_of(text)
    # Then the rule's upstream is the one problem, with the fix; the images wait for it
    assert found == [
        "rules[0].upstream: unknown upstream (did you mean 'docker-hub'?); valid: azure-container-registry, "
        "chainguard, docker-hub, ecr, ecr-public, github-container-registry, gitlab-container-registry, k8s, quay "
        "(got 'dockerhub')"
    ]


def test_images_stranded_by_one_missing_upstream_share_one_problem() -> None:
    # Given images of two upstreams no rule caches and of one registry ECR cannot cache, several of each
    text = hub(
        """warm:
  images:
    - ghcr.io/org/a:1
    - registry.example.com/team/a:1
    - ghcr.io/org/b:1
    - docker.io/library/alpine:3.20
    - registry.example.com/team/b:1
    - ghcr.io/org/c:1
"""
    )
    # When it is parsed
    found = problems_of(text)
    # Then each cause is one problem, at its first image, naming every other image it strands
    assert [p.split(": ", 1)[0] for p in found] == ["warm.images[0]", "warm.images[1]"]
    assert found[0] == (
        "warm.images[0]: no rule caches ghcr.io images; add a rule with upstream: github-container-registry; "
        "the same for warm.images[2], warm.images[5] (got 'ghcr.io/org/a:1')"
    )
    assert found[1].startswith("warm.images[1]: ECR pull-through cache cannot cache images from registry.example.com;")
    assert "; the same for warm.images[4] (got 'registry.example.com/team/a:1')" in found[1]


def test_a_long_list_of_stranded_images_is_bounded() -> None:
    images = "".join(f"    - ghcr.io/org/app-{i}:1\n" for i in range(9))
    (only,) = problems_of(hub("warm:\n  images:\n" + images))
    assert "the same for warm.images[1], warm.images[2], warm.images[3], warm.images[4], warm.images[5] and 3 more" in (
        only
    )


def test_the_load_error_names_the_file(tmp_path: Path) -> None:
    # Given a file with a mistake
    path = tmp_path / "pullthrough.yaml"
    path.write_text("version: 1\nrules: [{prefix: q, upstream: quay}]\n")
    # When it is loaded
    with pytest.raises(ConfigError) as caught:
        load(path)
    # Then the location starts with the file's path, and the message counts the problems
    (problem,) = caught.value.problems
    assert problem.location == f"{path}: rules[0].prefix"
    assert problem.value == "'q'"
    assert str(caught.value).startswith("1 problem(s) in the Pullthrough config:\n  - ")


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "absent.yaml")
    assert caught.value.problems[0].message == "cannot read the config file: No such file or directory"


def test_a_token_pasted_anywhere_is_never_shown() -> None:
    # Given a document where a token was pasted instead of secret names, and into a tag value
    text = f"""version: 1
rules:
  - prefix: docker-hub
    upstream: docker-hub
    credentials:
      secret: {TOKEN}
      rotation: docker-hub-api
      admin_secret: ghp_R2c1Xz9LmQ4vB7nT0kWs8YpHd3FgJ6aEuC5i
    template: {{tags: {{token: "{TOKEN}"}}, lifecycle: 3}}
  - {{prefix: ghcr, upstream: github-container-registry, credentials: {{secret: 1, rotation: {TOKEN}}}}}
"""
    # When it is parsed
    with pytest.raises(ConfigError) as caught:
        parse(text, source="cfg.yaml")
    # Then no problem, and no message, carries the token
    rendered = str(caught.value)
    assert len(caught.value.problems) >= 3
    assert TOKEN not in rendered
    assert "ghp_R2c1Xz9LmQ4vB7nT0kWs8YpHd3FgJ6aEuC5i" not in rendered
    assert "<hidden: 41 characters that look like a token>" in rendered


def test_a_token_on_a_yaml_syntax_error_line_is_hidden() -> None:
    found = problems_of(f"version: 1\nrules:\n  - prefix: hub\n   credentials: {TOKEN}\n")
    assert len(found) == 1
    assert TOKEN not in found[0]
    assert "(got 'credentials: <hidden>')" in found[0]


# --- the example and the model's behaviour -----------------------------------------------------------------------


def test_the_example_config_loads_and_resolves_every_image() -> None:
    # Given the example users start from
    # When it is loaded
    config = load(EXAMPLE)
    # Then it has the five public-facing rules and warms the connector images of seed 000 through Docker Hub
    assert [(r.prefix, r.upstream) for r in config.rules] == [
        ("docker-hub", "docker-hub"),
        ("ghcr", "github-container-registry"),
        ("quay", "quay"),
        ("k8s", "k8s"),
        ("ecr-public", "ecr-public"),
    ]
    targets = {str(t.image.image.name): t for t in config.targets()}
    for connector in ("source-mysql", "source-postgres", "source-mongodb", "source-oracle"):
        target = targets[f"docker.io/olakego/{connector}"]
        assert target.rule.prefix == "docker-hub"
        assert target.cache_repository == f"docker-hub/olakego/{connector}"
        assert target.image.fixed_tags == ("v0.1.8",)
    assert targets["docker.io/library/nginx"].cache_repository == "docker-hub/library/nginx"
    assert targets["docker.io/olakego/source-oracle"].platforms == ("linux/amd64",)
    assert targets["docker.io/library/nginx"].platforms == ("linux/amd64", "linux/arm64")
    assert {t.rule.prefix for t in targets.values()} == {r.prefix for r in config.rules}


def test_rule_for_finds_the_one_rule_or_says_what_to_add() -> None:
    # Given the example config
    config = load(EXAMPLE)
    # When rules are looked up for references
    # Then each resolves by its registry, and an unknown registry gets the rule to add
    assert config.rule_for("olakego/source-mysql:v0.1.8").prefix == "docker-hub"
    assert config.rule_for(ImageReference.parse("ghcr.io/org/app")).prefix == "ghcr"
    assert config.rule_for("quay.io/org/app", pin="quay").prefix == "quay"
    with pytest.raises(ConfigError) as caught:
        config.rule_for("registry.gitlab.com/group/app:v1")
    assert caught.value.problems[0].message == (
        "no rule caches registry.gitlab.com images; add a rule with upstream: gitlab-container-registry"
    )


def test_the_explanation_covers_every_rule_and_image() -> None:
    config = load(EXAMPLE)
    lines = config.explain()
    assert lines[0].startswith("stack prod: 5 rule(s), 10 image(s) warmed on rate(6 hours)")
    assert "rule docker-hub: Docker Hub (registry-1.docker.io) cached as docker-hub/<path>" in lines
    assert (
        "  auth: secret ecr-pullthroughcache/docker-hub, rotation staged, expires 2027-05-01 (warn 14 days ahead)"
        in lines
    )
    assert "  template: IMMUTABLE_WITH_EXCLUSION except latest, main-*, AES256, keep the last 20 tagged images" in lines
    assert (
        "image docker.io/olakego/source-mysql -> docker-hub/olakego/source-mysql (rule docker-hub): v0.1.8; "
        "linux/amd64, linux/arm64"
    ) in lines
    assert any(
        line.startswith("image ghcr.io/fluxcd/source-controller -> ghcr/fluxcd/source-controller") for line in lines
    )
    assert lines[-1] == "reports: success summary; subject prefix [ACME]"


def test_defaults_make_a_minimal_document_useful() -> None:
    config = parse("version: 1\nrules: [{prefix: quay, upstream: quay}]\n")
    assert config.stack == "pullthrough"
    assert config.warm.schedule == "rate(6 hours)"
    assert config.warm.platforms == ("linux/amd64",)
    assert config.warm.images == ()
    assert config.notifications.success == "summary"
    assert config.rules[0].upstream_url == "quay.io"
    assert config.rules[0].secret_name is None


def test_short_forms_expand_to_the_object_forms() -> None:
    config = parse(hub("warm: {images: ['nginx:1.27@sha256:" + "a" * 64 + "']}\nnotifications: {success: off}\n"))
    assert config.rules[0].credentials is not None
    assert config.rules[0].credentials.secret == "ecr-pullthroughcache/docker-hub"
    assert config.rules[0].credentials.rotation == "staged"
    image = config.warm.images[0]
    assert str(image.image) == "docker.io/library/nginx:1.27@sha256:" + "a" * 64
    assert image.fixed_tags == ("1.27",)
    assert config.notifications.success == "off"  # YAML's bare off is false; the model reads it back as "off"


def test_tag_pattern_matches_whole_tags() -> None:
    config = parse(hub("warm: {images: [{image: olakego/source-mysql, tag_pattern: 'v0\\.1\\.\\d+', latest: 3}]}\n"))
    image = config.warm.images[0]
    assert image.matches("v0.1.8")
    assert not image.matches("v0.1.8-rc1")
    assert image.fixed_tags == ()


def test_azure_and_cross_account_ecr_rules() -> None:
    # Given rules for the two upstreams whose URL the user supplies
    text = """version: 1
rules:
  - {prefix: acr, upstream: azure-container-registry, url: myregistry.azurecr.io,
     credentials: ecr-pullthroughcache/acr}
  - {prefix: shared, upstream: ecr, url: 111122223333.dkr.ecr.eu-west-1.amazonaws.com,
     custom_role_arn: 'arn:aws:iam::444455556666:role/ecr-ptc', upstream_prefix: team-a}
warm:
  images:
    - myregistry.azurecr.io/app:v1
    - 111122223333.dkr.ecr.eu-west-1.amazonaws.com/team-a/api:v2
"""
    # When it is parsed
    config = parse(text)
    # Then images resolve by URL, and the upstream prefix is dropped from the cache name
    assert [(t.rule.prefix, t.cache_repository) for t in config.targets()] == [
        ("acr", "acr/app"),
        ("shared", "shared/api"),
    ]
    assert config.rules[1].upstream_url == "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
    # ...and an image outside the upstream prefix names the rule that would not take it
    bad = text.replace("team-a/api:v2", "team-b/api:v2")
    assert problems_of(bad) == [
        "warm.images[1]: no rule caches 111122223333.dkr.ecr.eu-west-1.amazonaws.com images; add a rule with "
        "upstream: ecr and url: 111122223333.dkr.ecr.eu-west-1.amazonaws.com (rule 'shared' caches Amazon ECR "
        "(private, cross-account or cross-region) (111122223333.dkr.ecr.eu-west-1.amazonaws.com) under team-a/ "
        "only) (got '111122223333.dkr.ecr.eu-west-1.amazonaws.com/team-b/api:v2')"
    ]


def test_a_pin_settles_an_ambiguous_image() -> None:
    text = hub(
        "  - {prefix: hub-team, upstream: docker-hub, credentials: ecr-pullthroughcache/hub-team}\n"
        "warm: {images: [{image: nginx:1.27, rule: hub-team}]}\n"
    )
    assert parse(text).targets()[0].cache_repository == "hub-team/library/nginx"


def test_lifecycle_policy_text_is_an_ecr_lifecycle_policy() -> None:
    config = parse(hub("    template: {lifecycle: {keep_last_tags: 50, expire_untagged_days: 7}}\n"))
    template = config.rules[0].template
    assert template is not None
    assert template.lifecycle is not None
    policy = json.loads(template.lifecycle.policy_text())
    assert policy["rules"] == [
        {
            "rulePriority": 1,
            "description": "expire untagged images after 7 days",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 7,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": "keep the last 50 tagged images",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": ["*"],
                "countType": "imageCountMoreThan",
                "countNumber": 50,
            },
            "action": {"type": "expire"},
        },
    ]


def test_credentials_object_form_keeps_every_field() -> None:
    text = hub("").replace(
        "credentials: ecr-pullthroughcache/docker-hub",
        "credentials: {secret: ecr-pullthroughcache/docker-hub, rotation: docker-hub-api,\n"
        "                  admin_secret: pullthrough/docker-hub-admin, organization: olakego,\n"
        "                  expires: 2027-05-01, warn_days: 30}",
    )
    creds = parse(text).rules[0].credentials
    assert creds is not None
    assert (creds.rotation, creds.admin_secret, creds.organization, creds.expires, creds.warn_days) == (
        "docker-hub-api",
        "pullthrough/docker-hub-admin",
        "olakego",
        date(2027, 5, 1),
        30,
    )


# --- never a traceback ---------------------------------------------------------------------------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
_keys = st.sampled_from(
    ["version", "stack", "rules", "warm", "notifications", "prefix", "upstream", "credentials", "template", "images"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    swaps=st.lists(st.tuples(st.sampled_from(["top", "rule", "warm", "image"]), _keys, _values), max_size=4),
)
def test_any_document_gives_a_config_or_a_config_error(swaps: list[tuple[str, str, Any]]) -> None:
    # Given the example document with arbitrary values put in arbitrary places
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    for where, key, value in swaps:
        target = {
            "top": doc,
            "rule": doc["rules"][0] if isinstance(doc.get("rules"), list) and doc["rules"] else doc,
            "warm": doc["warm"] if isinstance(doc.get("warm"), dict) else doc,
            "image": _first_image(doc),
        }[where]
        if isinstance(target, dict):
            target[key] = value
    # When it is parsed
    # Then the result is a Config, or a ConfigError whose every problem is located in the file
    outcome = _parse_outcome(yaml.safe_dump(doc), source="fuzz.yaml")
    if isinstance(outcome, ConfigError):
        assert outcome.problems
        assert all(p.location.startswith("fuzz.yaml") for p in outcome.problems)
    else:
        assert isinstance(outcome, Config)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=80))
def test_any_text_gives_a_config_or_a_config_error(text: str) -> None:
    outcome = _parse_outcome(text, source="<text>")
    assert isinstance(outcome, Config) or outcome.problems


def _first_image(doc: dict[str, Any]) -> Any:
    images = doc.get("warm", {}).get("images") if isinstance(doc.get("warm"), dict) else None
    return images[0] if isinstance(images, list) and images else doc


def _parse_outcome(text: str, source: str) -> Config | ConfigError:
    """parse()'s result or its ConfigError; any other exception propagates and fails the test."""
    try:
        return parse(text, source=source)
    except ConfigError as exc:
        return exc


# --- the JSON Schema and the command line ------------------------------------------------------------------------


def test_the_committed_schema_matches_the_model() -> None:
    # Given the schema committed for editors
    # Then it is exactly what the model generates
    assert SCHEMA.read_text() == schema_text(), "config/pullthrough.schema.json is stale: run `make schema`"


def test_the_schema_accepts_the_example_and_refuses_a_typo() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    document = yaml.safe_load(EXAMPLE.read_text())
    # YAML reads `expires: 2027-05-01` as a date; an editor's YAML server sees the string
    document["rules"][0]["credentials"]["expires"] = "2027-05-01"
    assert list(validator.iter_errors(document)) == []
    document["rules"][0]["upstream"] = "dockerhub"
    document["rules"][1]["prefix"] = "GHCR"
    assert {tuple(e.path) for e in validator.iter_errors(document)} == {
        ("rules", 0, "upstream"),
        ("rules", 1, "prefix"),
    }


def test_dump_schema_documents_every_field() -> None:
    schema = Config.dump_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    undocumented = [
        f"{name}.{field}"
        for name, definition in {"Config": schema, **schema["$defs"]}.items()
        for field, spec in definition["properties"].items()
        if not spec.get("description")
    ]
    assert undocumented == []


def test_check_prints_the_explanation(capsys: pytest.CaptureFixture[str]) -> None:
    assert config_command.main(["--check", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == load(EXAMPLE).explain()


def test_check_prints_the_problems_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nrules: [{prefix: hub, upstream: docker-hub}]\n")
    assert config_command.main(["--check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: rules[0].credentials: upstream docker-hub needs credentials" in err
    assert "Traceback" not in err


def test_the_module_runs_and_stays_free_of_boto3() -> None:
    # Given a fresh interpreter (as in a Lambda cold start)
    # When the config module prints the schema
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, runpy; sys.argv = ['x', '--schema']; "
            "runpy.run_module('pullthrough.config', run_name='__main__', alter_sys=True)",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    # Then it prints the schema; and importing the module did not import boto3
    assert result.returncode == 0, result.stderr
    assert result.stdout == schema_text()
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, pullthrough.config; print('boto3' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("ecr-pullthroughcache/" + "a" * (512 - len("ecr-pullthroughcache/")), True),
        ("ecr-pullthroughcache/" + "a" * (513 - len("ecr-pullthroughcache/")), False),
        ("ecr-pullthroughcache/has space", False),
        ("ecr-pullthroughcache/semi;colon", False),
    ],
    ids=["512-characters", "513-characters", "a-space", "a-semicolon"],
)
def test_a_secret_name_is_at_most_512_of_the_characters_secrets_manager_takes(name: str, valid: bool) -> None:
    text = f"version: 1\nrules:\n  - {{prefix: docker-hub, upstream: docker-hub, credentials: '{name}'}}\n"
    if valid:
        assert parse(text).rules[0].secret_name == name
        return
    with pytest.raises(ConfigError) as raised:
        parse(text)
    assert "a secret name is at most 512 of the characters A-Z a-z 0-9 / _ + = . @ -" in str(raised.value)
