"""ECR to ECR pull through cache across accounts: a member registry importing from the hub's registry.

What AWS documents (ECR User Guide, "Setting up permissions for cross-account ECR to ECR PTC", and "Creating a pull
through cache rule" for an `ecr` upstream): the downstream registry's rule names the upstream registry
(`upstreamRegistryUrl` `<account>.dkr.ecr.<region>.amazonaws.com`), a `customRoleArn` and an
`upstreamRepositoryPrefix`. "Amazon ECR needs permissions to pull images from the upstream Amazon ECR registry on your
behalf": ECR assumes the custom role as the service principal `pullthroughcache.ecr.amazonaws.com` (the role's trust
policy must allow it), and with the role's permissions policy (ecr:GetAuthorizationToken, ecr:BatchGetImage,
ecr:GetDownloadUrlForLayer, ecr:BatchImportUpstreamImage, ...) reads the upstream registry; "the upstream registry
owner must also grant the cache registry owner" those actions in its registry (or repository) policy.

How the sandbox evaluates one import request (each manifest or layer the member's ECR asks the hub for):
1. the rule's customRoleArn names a role that exists in the member account (moto's IAM of that account);
2. its trust policy lets `pullthroughcache.ecr.amazonaws.com` call sts:AssumeRole; the context holds aws:SourceAccount
   (the member account: IAM User Guide, "The confused deputy problem", what a service sets when it acts for an
   account). AWS does not say what aws:SourceArn ECR sets here, so the sandbox sets none: a trust condition on it
   does not hold (the most demanding reading);
3. ecr:GetAuthorizationToken on `*` (identity only: a registry-level action), then for a manifest ecr:BatchGetImage and
   ecr:BatchImportUpstreamImage, for a layer ecr:GetDownloadUrlForLayer, on the hub repository's ARN, decided as IAM
   decides across accounts (sandbox/aws/iam_resource.py): the role's identity-based policies AND the hub's registry
   policy (moto's `registry_policy`, what GetRegistryPolicy returns), whose conditions see aws:PrincipalOrgID,
   aws:PrincipalOrgPaths and aws:PrincipalAccount from the organization (sandbox/aws/organization.py). In the hub's own
   account (another region) the identity policy alone may allow. The hub repositories are pull through cache
   repositories, so every manifest request may make the hub import: BatchImportUpstreamImage is asked every time
   (AWS does not say when; the most demanding reading, as sandbox/aws/iam_requests.py's registry_request).
Any refusal fails the image with `UpstreamAccessDenied` (botocore's ImageFailureCode) and a reason that names the role
and the fix. Every request is evaluated afresh: AWS does not say how long ECR keeps the role's session, nor whether a
cached image's 24-hour re-check (the member's) asks the hub again; the sandbox asks the hub again and re-evaluates
the policies each time (a revoked grant shows on the next re-check; the member still serves what it holds, as for
any upstream failure of a re-check: sandbox/registries/ecr_registry.py).

The hub answers from its own registry model: a tag is synced through the hub's own rule (one upstream pull for the
whole organization), layers come from the hub's storage, or while the hub imports them from the upstream's storage.
Only pull through cache repositories of the hub are served (images pushed to a hub repository are not modelled).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from moto.iam.models import iam_backends

from sandbox.aws import moto_ecr
from sandbox.aws.iam import Authorization
from sandbox.aws.iam import Role as IdentityPolicies
from sandbox.aws.iam_conditions import UnsupportedPolicy
from sandbox.aws.iam_requests import PTC_SERVICE
from sandbox.aws.iam_resource import Caller, cross_account, denied_by, parse, statements_of, trust_allows
from sandbox.aws.moto_ecr_state import backend
from sandbox.aws.organization import Organization
from sandbox.registries.ecr_layers import NotHeld
from sandbox.registries.ecr_registry import Manifest, Route
from sandbox.registries.ecr_upstream import (
    ACCESS_DENIED,
    NOT_FOUND,
    UNAVAILABLE,
    Fetched,
    Head,
    UpstreamClient,
    UpstreamFailure,
    _fetch,
)

if TYPE_CHECKING:
    from moto.iam.models import Role as MotoRole

    from sandbox.registries.ecr_endpoint import EcrEndpoint
    from sandbox.registries.ecr_registry import EcrRegistry

SESSION = "pullthroughcache"  # AWS does not document the session name ECR uses when it assumes the custom role
MANIFEST_ACTIONS = ("ecr:BatchGetImage", "ecr:BatchImportUpstreamImage")
LAYER_ACTIONS = ("ecr:GetDownloadUrlForLayer",)


class CrossAccountImports:
    """Where a member registry's ECR-to-ECR rules import from: the registries of the organization, by host."""

    def __init__(self, organization: Organization, endpoints: Mapping[str, EcrEndpoint]) -> None:
        self.organization = organization
        self.endpoints = endpoints  # `<account>.dkr.ecr.<region>.amazonaws.com` -> that registry's endpoint (live)

    def clients_for(self, member: EcrRegistry) -> Callable[[Route], UpstreamClient | None]:
        """The registry's hook (EcrRegistry.ecr_upstream): a client for a route whose upstream is an ECR registry."""

        def pick(route: Route) -> UpstreamClient | None:
            hub = self.endpoints.get(route.upstream_url)
            if hub is None:
                return None
            rule = moto_ecr.find_rule(member.account, member.region, route.repository) or {}
            return EcrImportClient(self.organization, member.account, hub, rule)

        return pick

    def validate(self, account: str, region: str, rule: Mapping[str, Any]) -> str | None:
        """ValidatePullThroughCacheRule of an `ecr` rule: ECR can assume the role and reach the registry; the
        failure text, or None. (AWS does not document what it checks for an ecr upstream: the sandbox checks the role
        and ecr:GetAuthorizationToken, which every import needs, not a particular repository.)"""
        del region
        hub = self.endpoints.get(str(rule.get("upstreamRegistryUrl")))
        if hub is None:
            return f"Unable to connect to upstream registry {rule.get('upstreamRegistryUrl')}: it is not reachable."
        try:
            EcrImportClient(self.organization, account, hub, rule).authenticate()
        except UpstreamFailure as failure:
            return failure.reason
        return None


class EcrImportClient(UpstreamClient):
    """The member's ECR reading the hub's registry as the rule's custom role (module docstring, steps 1 to 3)."""

    def __init__(self, organization: Organization, member: str, hub: EcrEndpoint, rule: Mapping[str, Any]) -> None:
        super().__init__(hub.url, None)
        self.organization = organization
        self.member = member
        self.hub = hub
        self.role_arn = str(rule.get("customRoleArn") or "")
        self.prefix = str(rule.get("ecrRepositoryPrefix") or "")

    # --- what the member's registry asks (UpstreamClient's operations) -------------------------------------------

    def head_manifest(self, repository: str, reference: str) -> Head:
        manifest = self._manifest(repository, reference)
        return Head(manifest.digest, manifest.media_type, len(manifest.body))

    def get_manifest(self, repository: str, reference: str) -> Fetched:
        manifest = self._manifest(repository, reference)
        # The member's read is a BatchGetImage on the hub: a pull of the hub's image (moto_ecr_images.batch_get_image).
        self.hub.registry.record_pull(repository, manifest.digest)
        return Fetched(manifest.digest, manifest.media_type, manifest.body)

    def blob_location(self, repository: str, digest: str) -> str:
        route = self._authorized(repository, LAYER_ACTIONS)
        try:
            # GetDownloadUrlForLayer on the hub: its pre-signed URL, or (the hub importing) the upstream's storage.
            return self.hub.registry.request_layer(route, digest, pulled=False)
        except NotHeld:
            raise UpstreamFailure(NOT_FOUND, f"The registry {self._hub_id} does not have layer {digest}.") from None

    def get_blob(self, repository: str, digest: str) -> bytes:
        status, body = _fetch(self.blob_location(repository, digest), self.timeout)
        if status != 200:
            raise UpstreamFailure(UNAVAILABLE, f"The registry {self._hub_id} could not serve layer {digest}.", status)
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise UpstreamFailure(UNAVAILABLE, f"The registry {self._hub_id} served layer {digest} corrupted.")
        return body

    def authenticate(self) -> None:
        """ECR assumes the role and asks for a registry token (steps 1 and 2, and GetAuthorizationToken)."""
        self._session()

    # --- the hub's side ------------------------------------------------------------------------------------------

    @property
    def _hub_id(self) -> str:
        return f"{self.hub.account} in {self.hub.region}"

    def _manifest(self, repository: str, reference: str) -> Manifest:
        route = self._authorized(repository, MANIFEST_ACTIONS)
        registry = self.hub.registry
        try:
            return (
                registry.digest(route, reference) if reference.startswith("sha256:") else registry.tag(route, reference)
            )
        except NotHeld:
            raise UpstreamFailure(
                NOT_FOUND, f"The registry {self._hub_id} does not have {repository}@{reference}."
            ) from None

    def _authorized(self, repository: str, actions: tuple[str, ...]) -> Route:
        """The hub's route of `repository` once every action is allowed (else UpstreamAccessDenied)."""
        caller, permissions = self._session()
        resource = f"arn:aws:ecr:{self.hub.region}:{self.hub.account}:repository/{repository}"
        policy = parse(
            f"registry policy of {self.hub.account}", backend(self.hub.account, self.hub.region).registry_policy
        )
        context = {
            **self.organization.context_of(self.member),
            "aws:principalarn": self.role_arn,
            "aws:requestedregion": self.hub.region,
            "aws:resourceaccount": self.hub.account,
        }
        for action in actions:
            request = Authorization(action, resource, context, "ECR to ECR pull through cache import")
            decision, refused_by = cross_account(permissions, policy, caller, self.hub.account, request)
            if refused_by:
                raise UpstreamFailure(ACCESS_DENIED, self._refusal(caller, decision, refused_by))
        route = self.hub.rules.route(repository)
        if route is None:
            raise UpstreamFailure(
                NOT_FOUND, f"The repository {repository} does not exist in the registry {self._hub_id}."
            )
        return route

    def _refusal(self, caller: Caller, decision: Any, refused_by: str) -> str:
        action = decision.request.action
        where = f"pull through cache rule {self.prefix} (role {self.role_arn})"
        if refused_by == "resource":
            fix = (
                f"The registry policy of {self._hub_id} must allow {action} to the role (for the organization: "
                f"Principal AWS * with aws:PrincipalOrgID {self.organization.id})."
            )
        else:
            fix = f"Allow {action} on {decision.request.resource} in the permissions policy of {self.role_arn}."
        return f"{where}: {denied_by(caller, decision, refused_by)}. {fix}"

    def _session(self) -> tuple[Caller, IdentityPolicies]:
        """ECR's session of the custom role (steps 1, 2 and GetAuthorizationToken), or UpstreamAccessDenied."""
        arn = self.role_arn
        if not arn:
            raise UpstreamFailure(ACCESS_DENIED, f"Pull through cache rule {self.prefix} has no customRoleArn.")
        role = _role(self.member, arn)
        if role is None:
            raise UpstreamFailure(
                ACCESS_DENIED,
                f"Amazon ECR could not assume the role {arn} of pull through cache rule {self.prefix}: the role does "
                f"not exist in account {self.member}. Create it, or update the rule's customRoleArn.",
            )
        if not trust_allows(role.assume_role_policy_document, PTC_SERVICE, {"aws:SourceAccount": self.member}):
            raise UpstreamFailure(
                ACCESS_DENIED,
                f"Amazon ECR could not assume the role {arn} of pull through cache rule {self.prefix}: its trust "
                f"policy does not allow the service principal {PTC_SERVICE} to perform sts:AssumeRole. Add a "
                f'statement with Principal {{"Service": "{PTC_SERVICE}"}} and Action sts:AssumeRole.',
            )
        caller = Caller(f"arn:aws:sts::{self.member}:assumed-role/{role.name}/{SESSION}", self.member, role_arn=arn)
        permissions = IdentityPolicies(role.name, _permissions(role))
        token = Authorization("ecr:GetAuthorizationToken", "*", self.organization.context_of(self.member))
        decision, refused_by = cross_account(permissions, (), caller, self.member, token)
        if refused_by:
            raise UpstreamFailure(ACCESS_DENIED, self._refusal(caller, decision, refused_by))
        return caller, permissions


def _role(account: str, arn: str) -> MotoRole | None:
    """The role in moto's IAM of the account (roles are global: any region's backend of the partition)."""
    roles = iam_backends[account]["aws"].roles
    return next((r for r in list(roles.values()) if r.arn == arn), None)


def _permissions(role: MotoRole) -> tuple[Any, ...]:
    """Every statement of the role's inline and attached managed policies."""
    if role.permissions_boundary_arn:
        raise UnsupportedPolicy(f"{role.arn}: permissions boundaries are not evaluated by the sandbox")
    statements: list[Any] = []
    for name, text in role.policies.items():
        statements += statements_of(name, text)
    for policy in role.managed_policies.values():
        document = next(v.document for v in policy.versions if v.version_id == policy.default_version_id)
        statements += statements_of(policy.name, document)
    return tuple(statements)


__all__ = ["CrossAccountImports", "EcrImportClient"]
