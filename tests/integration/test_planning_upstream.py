"""What planning asks of the upstream, counted at the sandbox's front (its token realm and registry):

- a Docker Hub plan asks the token realm once per up to 50 repositories, with a repeated `scope` parameter (Docker's
  token spec; Docker Hub honours it), and the HEADs use that token; a GHCR rule asks once per repository;
- a scope the shared token leaves out costs its repository a token of its own, not a failure, and fails no other;
- a six-hourly schedule HEADs a tag ECR holds only when its copy is due for ECR's daily re-check.

ECR is test_planning's fake; the upstream is the sandbox's, through the library's RegistryClient.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pullthrough import config as config_module
from pullthrough.aws.ledger import Verified
from pullthrough.config import Rule
from pullthrough.registry import manifests
from pullthrough.registry.auth import Credentials
from pullthrough.registry.client import RegistryClient
from pullthrough.reporting.vocabulary import Outcome
from pullthrough.warm.planner import Plan, Planner, WarmRequest
from sandbox import Sandbox
from tests.integration.local_registries import Reply, Stub
from tests.integration.test_registry_auth import StubFactory
from tests.unit.test_planning import RUN, FakeEcr

pytestmark = pytest.mark.sandbox

USER, PASSWORD = "planning-tokens", "dckr_pat_" + "PlanningTokensNotARealOne1"
REPOSITORIES = 60
START = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pushed(sandbox: Sandbox) -> list[str]:
    """60 repositories upstream with one small image each (tag 1); their names."""
    sandbox.add_user(USER, PASSWORD)
    names = [f"tokens/app{index:02d}" for index in range(REPOSITORIES)]
    for name in names:
        sandbox.push_image(name, "1", layer_sizes=[64], seed=name)
    return names


def config_for(names: Sequence[str], upstream: str = "docker-hub") -> config_module.Config:
    domain = {"docker-hub": "docker.io", "github-container-registry": "ghcr.io"}[upstream]
    document = {
        "version": 1,
        "stack": "tokens",
        "rules": [{"prefix": "up", "upstream": upstream, "credentials": "ecr-pullthroughcache/up"}],
        "warm": {
            "platforms": ["linux/amd64"],
            "budget_share": 1.0,
            "images": [{"image": f"{domain}/{name}", "tags": ["1"]} for name in names],
        },
    }
    return config_module.parse(json.dumps(document))


def client_for(sandbox: Sandbox, credentials: Credentials | None) -> Any:
    def upstream_for(rule: Rule) -> RegistryClient:
        url = sandbox.upstream_endpoints()[rule.upstream_url]
        return RegistryClient(url, name=rule.upstream_url, credentials=credentials, connections=8)

    return upstream_for


def counted(sandbox: Sandbox, before: dict[tuple[str, str], int]) -> dict[str, int]:
    now = sandbox.upstream.counters
    return {f"{m} {k}": now[(m, k)] - before.get((m, k), 0) for (m, k) in now if now[(m, k)] != before.get((m, k), 0)}


def test_a_docker_hub_plan_asks_one_token_per_50_repositories_and_a_ghcr_plan_one_per_repository(
    sandbox: Sandbox, pushed: list[str]
) -> None:
    upstream_for = client_for(sandbox, Credentials(USER, PASSWORD))
    asked = {}
    for upstream in ("docker-hub", "github-container-registry"):
        before = dict(sandbox.upstream.counters)
        # When 60 repositories ECR lacks are planned through a rule of that upstream
        plan = Planner(config_for(pushed, upstream), FakeEcr(), upstream_for).plan(WarmRequest(trigger="t"), RUN)
        # Then every tag's HEAD answered (each is a warm job at the upstream's digest)
        assert len(plan.jobs) == REPOSITORIES
        assert all(job.expected_digest for job in plan.jobs)
        asked[upstream] = counted(sandbox, before)
    # And Docker Hub's realm was asked twice (50 repositories, then 10), GHCR's once per repository
    assert asked["docker-hub"]["GET token"] == 2
    assert asked["github-container-registry"]["GET token"] == REPOSITORIES
    assert asked["docker-hub"]["HEAD manifest"] == asked["github-container-registry"]["HEAD manifest"] == REPOSITORIES
    # And each client learned how the registry authenticates with one GET /v2/, not one per thread that needed it
    assert asked["docker-hub"]["GET ping"] == asked["github-container-registry"]["GET ping"] == 1


def test_a_scope_the_shared_token_leaves_out_fails_no_other_repository(sandbox: Sandbox, pushed: list[str]) -> None:
    # Given anonymous access (the realm grants pulls of public repositories only) and one private repository among
    # the public ones
    sandbox.push_image("private/tokens-app", "1", layer_sizes=[64], seed="private")
    names = [*pushed[:5], "private/tokens-app"]
    before = dict(sandbox.upstream.counters)
    # When they are planned through a Docker Hub rule
    plan = Planner(config_for(names), FakeEcr(), client_for(sandbox, None)).plan(WarmRequest(trigger="t"), RUN)
    # Then the public ones are HEADed with the one shared token; the private one asked for its own token, which the
    # realm refused too, so it alone fails, as an authentication problem
    assert sorted(job.upstream_repository for job in plan.jobs) == sorted(pushed[:5])
    [failed] = plan.decided
    assert failed.item.outcome is Outcome.FAILED
    assert failed.item.subject == "docker.io/private/tokens-app:1"
    assert counted(sandbox, before)["GET token"] == 2


def test_a_shared_token_without_a_scope_falls_back_to_that_repositorys_own_token(stub_server: StubFactory) -> None:
    # Given a Docker Hub-like registry whose realm leaves `team/b` out of a token asked for several repositories,
    # and grants it in a token of its own
    realm_asked: list[list[str]] = []

    def realm(method: str, path: str, headers: dict[str, str]) -> Reply:
        scopes = [part.split("=", 1)[1] for part in path.partition("?")[2].split("&") if part.startswith("scope=")]
        realm_asked.append(scopes)
        token = "shared" if len(scopes) > 1 else "own"
        return 200, {}, json.dumps({"token": token, "expires_in": 300}).encode()

    auth = stub_server(realm)

    def registry(method: str, path: str, headers: dict[str, str]) -> Reply:
        challenge = f'Bearer realm="{auth.url}/token",service="registry.docker.io"'
        token = headers.get("authorization", "")
        if path == "/v2/" and not token:
            return 401, {"WWW-Authenticate": challenge}, b""
        if token == "Bearer shared" and "/team/b/" in path:
            scope = 'scope="repository:team/b:pull",error="insufficient_scope"'
            return 401, {"WWW-Authenticate": f"{challenge},{scope}"}, b""
        digest = "sha256:" + "b" * 64
        return 200, {"Docker-Content-Digest": digest, "Content-Type": "application/vnd.oci.image.manifest.v1+json"}, b""

    server: Stub = stub_server(registry)
    client = RegistryClient(server.url, name="registry-1.docker.io", credentials=Credentials(USER, PASSWORD))
    # When one token is asked for both repositories, and both are HEADed
    assert client.authorize_pulls(["team/a", "team/b"]) == 1
    found = [client.head_manifest(name, "1").digest for name in ("team/a", "team/b")]
    # Then both HEADs succeeded: `team/a` with the shared token, `team/b` after asking for its own
    assert found == ["sha256:" + "b" * 64] * 2
    assert [len(scopes) for scopes in realm_asked] == [2, 1]
    assert client.calls[("GET", "token")] == 2
    # And a repository the shared token serves is not asked for again
    assert client.authorize_pulls(["team/a"]) == 0


def test_a_six_hourly_schedule_heads_the_tags_ecr_holds_once_a_day(sandbox: Sandbox, pushed: list[str]) -> None:
    # Given ten of the repositories' tags held complete in ECR, and a memory fed with what each plan verified
    names = pushed[:10]
    credentials = Credentials(USER, PASSWORD)
    ecr = FakeEcr()
    with RegistryClient(sandbox.upstream_url, credentials=credentials) as reader:
        for name in names:
            manifest = reader.get_manifest(name, "1")
            parsed = manifest.parsed()
            assert isinstance(parsed, manifests.ImageManifest)
            blobs = [parsed.config.digest] + [layer.digest for layer in parsed.layers]
            ecr.hold(f"up/{name}", "1", manifest.digest, manifest.body, blobs)
    known: dict[tuple[str, str], Verified] = {}

    class Memory:
        def remembered(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Verified]:
            return {key: known[key] for key in keys if key in known}

    def run(at: datetime) -> tuple[Plan, dict[str, int]]:
        before = dict(sandbox.upstream.counters)
        planner = Planner(config_for(names), ecr, client_for(sandbox, credentials), memory=Memory(), clock=lambda: at)
        plan = planner.plan(WarmRequest(trigger="schedule"), RUN)
        known.update((v.key, v) for v in plan.verified)
        return plan, counted(sandbox, before)

    # When the plan runs every six hours for a day and a half
    runs = [run(START + timedelta(hours=6 * index)) for index in range(7)]
    # Then every run finds them cached, and the upstream is asked only in the first run and a day later: one token
    # request and a HEAD per tag, no manifest GET ever
    assert all({d.item.outcome for d in plan.decided} == {Outcome.ALREADY_CACHED} for plan, _ in runs)
    heads = [asked.get("HEAD manifest", 0) for _, asked in runs]
    assert heads == [10, 0, 0, 0, 10, 0, 0]
    assert [asked.get("GET token", 0) for _, asked in runs] == [1, 0, 0, 0, 1, 0, 0]
    assert all(asked.get("GET manifest", 0) == 0 for _, asked in runs)
