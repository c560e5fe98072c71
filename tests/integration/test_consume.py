"""`pullthrough urls` and `pullthrough pull-config` driven as a user would, and the generated registries.conf used by a
real client: skopeo pulls docker.io/library/alpine:3.20 by its upstream name and gets it through the sandbox's ECR.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from pullthrough.aws import clients, ecr
from sandbox import Sandbox
from sandbox.registries import containerd as containerd_process
from sandbox.registries import skopeo
from sandbox.registries.containerd import Containerd
from tests.fake_aws import fake_aws
from tests.integration.cli_support import run

ACCOUNT = "111122223333"
HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
PREFIX = "consume-hub"
CONFIG = f"""
version: 1
rules:
  - prefix: {PREFIX}
    upstream: docker-hub
    credentials: ecr-pullthroughcache/{PREFIX}
  - prefix: consume-k8s
    upstream: k8s
warm:
  images:
    - alpine:3.20
    - registry.k8s.io/pause:3.10
"""


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    path = tmp_path / "pullthrough.yaml"
    path.write_text(CONFIG)
    return str(path)


def offline(*args: str, config: str) -> list[str]:
    return [*args, "--account", ACCOUNT, "--region", "us-east-1", "--config", config]


# --- urls -------------------------------------------------------------------------------------------------------------


def test_urls_lists_the_registry_bases_and_the_ecr_uri_of_each_warm_image(config_file: str) -> None:
    ran = run(*offline("urls", "--json", config=config_file))
    document = ran.document("urls")
    assert (ran.code, ran.err) == (0, "")
    assert document["target"]["registry"] == HOST
    assert [(r["upstream"], r["base"]) for r in document["registries"]] == [
        ("docker.io", f"{HOST}/{PREFIX}"),
        ("registry.k8s.io", f"{HOST}/consume-k8s"),
    ]
    assert [i["uri"] for i in document["images"]] == [
        f"{HOST}/{PREFIX}/library/alpine:3.20",
        f"{HOST}/consume-k8s/pause:3.10",
    ]
    text = run(*offline("urls", config=config_file))
    assert text.code == 0
    assert f"  {HOST}/{PREFIX}/library/alpine:3.20" in text.out.splitlines()


def test_urls_asks_sts_for_the_account_when_none_is_given(config_file: str) -> None:
    with fake_aws("eu-west-1"):
        ran = run("urls", "--json", "--config", config_file, progress=True)
    document = ran.document("urls")
    # What it is waiting for is said on stderr; stdout stays the one JSON document
    assert ran.err.splitlines() == ["asking STS for the account id of your credentials (or give --account)..."]
    # moto's account: the caller's account as GetCallerIdentity reports it
    assert document["target"]["account"] == "123456789012"
    assert document["target"]["registry"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def test_without_credentials_or_account_the_message_offers_account(
    config_file: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    clients.clear()
    try:
        ran = run("urls", "--config", config_file, "--region", "us-east-1")
    finally:
        clients.clear()
    assert (ran.code, ran.out) == (2, "")
    (line,) = ran.err.splitlines()
    assert "sts:GetCallerIdentity" in line
    assert line.endswith("or give the registry's account id with --account")


@pytest.mark.parametrize(
    ("option", "value"), [("--account", "12345"), ("--region", "moon-1"), ("--account", "1111-2222-3333")]
)
def test_a_bad_account_or_region_is_one_message_naming_the_option_and_exit_2(
    config_file: str, option: str, value: str
) -> None:
    args = {"--account": ACCOUNT, "--region": "us-east-1", option: value}
    ran = run("urls", "--config", config_file, *[x for kv in args.items() for x in kv])
    assert ran.code == 2
    assert ran.out == ""
    (line,) = ran.err.splitlines()
    assert line.startswith(f"error: {option}: ")
    assert repr(value) in line
    assert "Traceback" not in ran.err


# --- pull-config ------------------------------------------------------------------------------------------------------


def test_pull_config_prints_one_format_as_the_file_itself_with_notes_on_stderr(config_file: str) -> None:
    conf = run(*offline("pull-config", "--format", "registries.conf", config=config_file))
    assert (conf.code, conf.err) == (0, "")
    assert tomllib.loads(conf.out)["registry"][0]["mirror"] == [{"location": f"{HOST}/{PREFIX}"}]
    env = run(*offline("pull-config", "--format", "env", config=config_file))
    assert f'CONTAINER_REGISTRY_BASE="{HOST}/{PREFIX}"' in env.out.splitlines()
    # The Docker limitation is said plainly: in the file, and as a note on stderr
    assert "note (env): Docker Engine cannot use the cache as a mirror" in env.err
    policy = run(*offline("pull-config", "--format", "iam-policy", config=config_file))
    assert json.loads(policy.out)["Statement"][1]["Resource"] == [
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{PREFIX}/*",
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/consume-k8s/*",
    ]


def test_pull_config_prints_several_files_each_under_its_path(config_file: str) -> None:
    ran = run(*offline("pull-config", "--format", "containerd", config=config_file))
    assert ran.code == 0
    sections = ran.out.split("# ==> ")[1:]
    assert [section.split(" <==\n", 1)[0] for section in sections] == [
        "certs.d/docker.io/hosts.toml",
        "certs.d/registry.k8s.io/hosts.toml",
    ]
    for section in sections:
        assert tomllib.loads(section.split(" <==\n", 1)[1])["host"]
    assert ran.err.startswith("note (containerd): The node must authenticate to the ECR host")


def test_pull_config_writes_every_artefact_under_the_output_dir(config_file: str, tmp_path: Path) -> None:
    out = tmp_path / "consumers"
    ran = run(*offline("pull-config", "--output-dir", str(out), "--json", config=config_file))
    document = ran.document("pull-config")
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(
        [
            ".env",
            "registries.conf",
            "certs.d/docker.io/hosts.toml",
            "certs.d/registry.k8s.io/hosts.toml",
            "kyverno-policy.yaml",
            "puller-policy.json",
            "vpc-endpoints.yaml",
        ]
    )
    assert document["written"] == [str(out / f["path"]) for a in document["artefacts"] for f in a["files"]]
    for artefact in document["artefacts"]:
        for file in artefact["files"]:
            assert (out / file["path"]).read_text() == file["content"]
    text = run(*offline("pull-config", "--output-dir", str(out), config=config_file))
    assert f"wrote {out / '.env'}" in text.out.splitlines()
    assert any(line.startswith("note (vpc-endpoints): The first pull") for line in text.out.splitlines())


def test_pull_config_refuses_an_output_dir_it_cannot_write(config_file: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    ran = run(*offline("pull-config", "--output-dir", str(blocker / "sub"), config=config_file))
    assert ran.code == 2
    (line,) = ran.err.splitlines()
    assert line.startswith("error: --output-dir: cannot write")


def test_pull_config_end_to_end_as_a_process(config_file: str) -> None:
    layer = Path(__file__).parents[2] / "layers" / "pullthrough"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(layer), str(layer.parents[1])])}
    done = subprocess.run(
        [sys.executable, "-m", "pullthrough.cli", *offline("pull-config", "--format", "kyverno", config=config_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert "kind: ClusterPolicy" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "pullthrough.cli", "pull-config", "--format", "docker", "--config", config_file],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert bad.returncode == 2
    assert "invalid choice: 'docker'" in bad.stderr


# --- a real client: skopeo with only the generated registries.conf -------------------------------------------------


@pytest.fixture(scope="module")
def hub_rule(sandbox: Sandbox) -> Iterator[Sandbox]:
    """A Docker Hub rule under PREFIX in the sandbox's ECR, its secret holding a user the upstream accepts."""
    user, token = "consume-user", "dckr_pat_consumeconsumeconsume12"
    sandbox.add_user(user, token)
    try:
        with fake_aws(sandbox.region):
            sandbox.configure_rules()
            ecr.forget_authorization()
            arn = boto3.client("secretsmanager").create_secret(
                Name=f"ecr-pullthroughcache/{PREFIX}", SecretString=json.dumps({"username": user, "accessToken": token})
            )["ARN"]
            boto3.client("ecr").create_pull_through_cache_rule(
                ecrRepositoryPrefix=PREFIX,
                upstreamRegistryUrl="registry-1.docker.io",
                upstreamRegistry="docker-hub",
                credentialArn=arn,
            )
            yield sandbox
    finally:
        sandbox.remove_user(user)


@pytest.mark.sandbox
def test_skopeo_pulls_alpine_by_its_upstream_name_through_ecr_with_the_generated_registries_conf(
    hub_rule: Sandbox, config_file: str, tmp_path: Path
) -> None:
    sb = hub_rule
    pushed = sb.push_image("library/alpine", "3.20")
    # Given the registries.conf a user gets for the sandbox's account, written by the command itself
    generated = run(
        "pull-config", "--format", "registries.conf", "--output-dir", str(tmp_path),
        "--account", sb.account, "--region", sb.region, "--config", config_file,
    )  # fmt: skip
    assert generated.code == 0
    users_copy = (tmp_path / "registries.conf").read_text()
    assert "insecure" not in users_copy
    registry_host = f"{sb.account}.dkr.ecr.{sb.region}.amazonaws.com"
    assert f'location = "{registry_host}/{PREFIX}"' in users_copy
    before = sb.ecr.counters[("GET", "manifest")]
    # When skopeo pulls the image by its upstream name with only that registries.conf (flag and variable alike),
    # the copy pointed at the sandbox's ECR endpoint (plain HTTP on 127.0.0.1, insecure = true on that mirror only)
    # and ECR's login for the mirror host, as `podman login` would store it
    done = skopeo.pull_by_upstream_name(sb, users_copy, "docker.io/library/alpine:3.20", tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    # Then it got the image the upstream has
    pulled = (tmp_path / "pulled" / "manifest.json").read_bytes()
    assert f"sha256:{hashlib.sha256(pulled).hexdigest()}" == pushed.digest
    # And the pull went through ECR: the endpoint served the manifest, ECR now holds the tag in the cache repository
    assert sb.ecr.counters[("GET", "manifest")] == before + 1
    described = boto3.client("ecr").describe_images(repositoryName=f"{PREFIX}/library/alpine")["imageDetails"]
    assert [(d["imageDigest"], d.get("imageTags")) for d in described] == [(pushed.digest, ["3.20"])]


# --- a real client: containerd with only the generated hosts.toml ---------------------------------------------------


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    """A private containerd daemon; skipped when the package is missing, but CI (CI=true) fails instead."""
    if containerd_process.find_binary() is None:
        message = "containerd is not installed: run `make system` (apt-get install -y containerd)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI must run the real-client tests", pytrace=False)
        pytest.skip(message)
    with containerd_process.running(tmp_path_factory.mktemp("containerd")) as daemon:
        yield daemon


@pytest.mark.sandbox
def test_containerd_pulls_a_multi_arch_image_by_its_upstream_name_through_ecr_with_the_generated_hosts_toml(
    hub_rule: Sandbox, containerd: Containerd, config_file: str, tmp_path: Path
) -> None:
    sb = hub_rule
    # (another image than the skopeo test's: ECR re-checks a cached tag upstream at most once a day, FACTS.md)
    pushed = sb.push_image("library/busybox", "1.36", platforms=("linux/amd64", "linux/arm64"))
    # Given the hosts.toml files a user gets for the sandbox's account, written by the command itself
    out = tmp_path / "generated"
    generated = run(
        "pull-config", "--format", "containerd", "--output-dir", str(out),
        "--account", sb.account, "--region", sb.region, "--config", config_file,
    )  # fmt: skip
    assert generated.code == 0
    users_copy = (out / "certs.d" / "docker.io" / "hosts.toml").read_text()
    # And the test's copy, pointed at the sandbox's ECR endpoint (plain HTTP on 127.0.0.1): only the host URL swapped
    host_url = f"https://{sb.account}.dkr.ecr.{sb.region}.amazonaws.com/v2/{PREFIX}"
    assert f'[host."{host_url}"]' in users_copy
    hosts_dir = tmp_path / "certs.d"
    (hosts_dir / "docker.io").mkdir(parents=True)
    (hosts_dir / "docker.io" / "hosts.toml").write_text(users_copy.replace(host_url, f"{sb.ecr_url}/v2/{PREFIX}"))
    before = sb.ecr.counters[("GET", "manifest")]
    # When containerd fetches the image by its upstream name, every platform, with ECR's login
    done = containerd.ctr(
        [
            "content", "fetch", "--hosts-dir", str(hosts_dir), "--user", f"AWS:{sb.ecr_password}",
            "--all-platforms", "docker.io/library/busybox:1.36",
        ]
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Then it resolved the index the upstream has, and holds every manifest and blob of it
    listed = containerd.ctr(["content", "ls", "--quiet"]).stdout.split()
    assert pushed.digest in listed
    assert set(pushed.platforms.values()) | set(pushed.blob_digests) <= set(listed)
    # And it got them through ECR: the endpoint served the manifests, ECR holds the tag in the cache repository
    assert sb.ecr.counters[("GET", "manifest")] > before
    described = boto3.client("ecr").describe_images(repositoryName=f"{PREFIX}/library/busybox")["imageDetails"]
    assert (pushed.digest, ["1.36"]) in [(d["imageDigest"], d.get("imageTags")) for d in described]
