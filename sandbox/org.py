"""The sandbox with several AWS accounts and regions: a hub registry facing the upstreams, and member registries.

    org = Organization(id="o-a1b2c3d4e5", accounts={"111111111111": "ou-ab12-hubhubhu",
                                                     "222222222222": "ou-ab12-11111111"})
    with OrgSandbox(workdir, org, hub=("111111111111", "us-east-1"),
                    registries=[("222222222222", "eu-west-1"), ("222222222222", "us-west-2")]) as osb:
        with mock_aws():
            osb.configure()                                    # after each mock_aws() start (moto's state is new)
            ecr = osb.client("ecr", "222222222222", "eu-west-1")  # boto3 acting in that account and region
            osb.hub.push_image("library/nginx", "1.27")        # the hub's Sandbox: the upstream and its front
            osb.upstream.counters[("GET", "manifest")]         # the upstream's pulls, for the whole organization
            osb.endpoint(account, region)                      # that registry's endpoint: .url, .registry, .password
            osb.registry(account, region)                      # its ECR model: .repository(name), .events, .clock
            osb.ecr_auth(account, region)                      # Basic AWS:<token>: that account's GetAuthorizationToken
            osb.env(account, region)                           # PULLTHROUGH_* pointing the library at it
            osb.add_registry(account, region)                  # one more account/region (idempotent)
            osb.advance(hours=25); osb.settle()

Accounts in moto: moto's documented STS mechanism (getmoto/moto, docs/docs/multi_account.rst, "Configure an account
using STS": "Passing in a role that belongs to a different account will return a set of credentials that give access
to that account"; the role need not exist). `client()` assumes `OrganizationAccountAccessRole` there
(sandbox/aws/accounts.py). MOTO_ACCOUNT_ID must stay unset: moto reads it before any credential. A Stack deployed with
`account=` creates its resources in that account and runs its functions with that account's credentials.

One ECR endpoint and registry model per (account, region), each `<account>.dkr.ecr.<region>.amazonaws.com` on its own
loopback port; moto's image operations of each account and region answer from its model (sandbox/aws/moto_ecr.py).
A rule whose upstream is one of these registries imports from it as the ECR guide's cross-account ECR to ECR pull
through cache does (sandbox/registries/ecr_cross_account.py: the custom role's trust and permissions, the upstream
registry's policy with the organization's condition keys). The hub's rules face the one upstream front, so the
front's counters count the organization's upstream pulls.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from sandbox import DEFAULT_HOSTS, Sandbox
from sandbox.aws import accounts, iam_requests, moto_ecr, moto_ecr_rules
from sandbox.aws.organization import Organization
from sandbox.registries.ecr_cross_account import CrossAccountImports
from sandbox.registries.ecr_endpoint import EcrEndpoint, MotoCacheRules
from sandbox.registries.ecr_registry import EcrRegistry
from sandbox.registries.upstream import UpstreamFront

__all__ = ["OrgSandbox", "Organization", "ecr_host"]


def ecr_host(account: str, region: str) -> str:
    """A private registry's host name (ECR User Guide, "Amazon ECR private registry")."""
    return f"{account}.dkr.ecr.{region}.amazonaws.com"


class OrgSandbox:
    """The hub's Sandbox (upstream, front, hub registry) and a registry per member (account, region)."""

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        organization: Organization,
        *,
        hub: tuple[str, str],
        registries: Iterable[tuple[str, str]] = (),
        hosts: tuple[str, ...] = DEFAULT_HOSTS,
    ) -> None:
        self.workdir = Path(workdir)
        self.organization = organization
        self.hub_account, self.hub_region = hub
        self.hub = Sandbox(self.workdir / "hub", hosts, account=self.hub_account, region=self.hub_region)
        self._wanted = [tuple(r) for r in registries if tuple(r) != hub]
        self._members: dict[tuple[str, str], EcrEndpoint] = {}
        self._by_host: dict[str, EcrEndpoint] = {}
        self.imports = CrossAccountImports(organization, self._by_host)

    # --- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> OrgSandbox:
        self.hub.start()
        try:
            self._by_host[ecr_host(self.hub_account, self.hub_region)] = self.hub.ecr
            self.hub.registry.ecr_upstream = self.imports.clients_for(self.hub.registry)
            for account, region in self._wanted:
                self.add_registry(account, region)
            self.configure()
        except BaseException:
            self.stop()
            raise
        return self

    def add_registry(self, account: str, region: str) -> EcrEndpoint:
        """Start the registry of one more account and region (the existing one when it runs already)."""
        if (account, region) == (self.hub_account, self.hub_region):
            return self.hub.ecr
        found = self._members.get((account, region))
        if found is not None:
            return found
        endpoint = EcrEndpoint(
            self.workdir / f"ecr-{account}-{region}",
            account=account,
            region=region,
            rules=MotoCacheRules(account, region),
            on_spawn=self.hub.started_pids.append,
        )
        endpoint.start()
        endpoint.registry.ecr_upstream = self.imports.clients_for(endpoint.registry)
        self._members[(account, region)] = endpoint
        self._by_host[ecr_host(account, region)] = endpoint
        self.configure()
        return endpoint

    def configure(self) -> None:
        """Point moto's hooks at every registry (call after each `mock_aws()` start: moto's state is new then)."""
        endpoints = self.upstream_endpoints()
        for endpoint in self.endpoints():
            endpoint.registry.upstream_endpoints.clear()
            endpoint.registry.upstream_endpoints.update(endpoints)
            moto_ecr.set_registry(endpoint.account, endpoint.region, endpoint.registry)
        moto_ecr.install()
        moto_ecr.set_upstream_endpoints(endpoints)
        if self.imports.validate not in moto_ecr_rules.ECR_UPSTREAM_VALIDATOR:
            moto_ecr_rules.ECR_UPSTREAM_VALIDATOR.append(self.imports.validate)
        if self._org_of not in iam_requests.RESOURCE_ORGS:
            iam_requests.RESOURCE_ORGS.append(self._org_of)

    def _org_of(self, account: str) -> str | None:
        """aws:ResourceOrgID of a resource in `account`: this organization's id for its accounts."""
        return self.organization.id if self.organization.member(account) else None

    def stop(self) -> None:
        """Stop every registry this organization started, then the hub's sandbox."""
        if self.imports.validate in moto_ecr_rules.ECR_UPSTREAM_VALIDATOR:
            moto_ecr_rules.ECR_UPSTREAM_VALIDATOR.remove(self.imports.validate)
        if self._org_of in iam_requests.RESOURCE_ORGS:
            iam_requests.RESOURCE_ORGS.remove(self._org_of)
        for (account, region), endpoint in list(self._members.items()):
            moto_ecr.set_registry(account, region, None)
            endpoint.stop()
            del self._members[(account, region)]
        self._by_host.clear()
        moto_ecr.set_registry(self.hub_account, self.hub_region, None)
        self.hub.stop()

    def __enter__(self) -> OrgSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # --- what tests read ------------------------------------------------------------------------------------------

    @property
    def upstream(self) -> UpstreamFront:
        """The one upstream front: its counters are the organization's upstream requests."""
        return self.hub.upstream

    def endpoints(self) -> list[EcrEndpoint]:
        """The hub's endpoint, then every member registry's."""
        return [self.hub.ecr, *self._members.values()]

    def endpoint(self, account: str, region: str) -> EcrEndpoint:
        if (account, region) == (self.hub_account, self.hub_region):
            return self.hub.ecr
        found = self._members.get((account, region))
        if found is None:
            raise KeyError(f"no registry in account {account} and region {region}: add_registry() it first")
        return found

    def registry(self, account: str, region: str) -> EcrRegistry:
        return self.endpoint(account, region).registry

    def upstream_endpoints(self) -> dict[str, str]:
        """Every host a rule may name -> its loopback URL: the upstream hosts and every registry of the sandbox."""
        hosts = self.hub.upstream_endpoints()
        hosts.update({ecr_host(e.account, e.region): e.url for e in self.endpoints()})
        return hosts

    def env(self, account: str, region: str) -> dict[str, str]:
        """The PULLTHROUGH_* variables that point the library at one account and region's registry."""
        return {
            "PULLTHROUGH_ECR_REGISTRY_URL": self.endpoint(account, region).url,
            "PULLTHROUGH_UPSTREAM_ENDPOINTS": json.dumps(self.hub.upstream_endpoints()),
        }

    def advance(self, **delta: float) -> None:
        """Move every registry's clock forward, e.g. advance(hours=25)."""
        for endpoint in self.endpoints():
            endpoint.registry.clock.advance(**delta)

    def reset_clocks(self) -> None:
        for endpoint in self.endpoints():
            endpoint.registry.clock.reset()

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until no registry has a background import running."""
        for endpoint in self.endpoints():
            endpoint.registry.settle(timeout)

    # --- AWS, account by account (inside mock_aws) ----------------------------------------------------------------

    def credentials(self, account: str, region: str) -> dict[str, str]:
        """boto3 keyword arguments acting in `account` (sandbox/aws/accounts.py: moto's STS mechanism)."""
        return accounts.credentials(account, region)

    def client(self, service: str, account: str, region: str) -> Any:
        """A boto3 client of `service` acting in `account` and `region`."""
        return accounts.client(service, region, account)

    def ecr_auth(self, account: str, region: str) -> dict[str, str]:
        """The Authorization header a client builds from the account's GetAuthorizationToken, for its registry."""
        data = self.client("ecr", account, region).get_authorization_token()["authorizationData"][0]
        return {"Authorization": f"Basic {data['authorizationToken']}"}

    def decoded_auth(self, account: str, region: str) -> tuple[str, str]:
        """(user, password) of the account's registry token."""
        header = self.ecr_auth(account, region)["Authorization"].removeprefix("Basic ")
        user, _, password = base64.b64decode(header).decode().partition(":")
        return user, password
