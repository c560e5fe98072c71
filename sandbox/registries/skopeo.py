"""A real client's pull through the sandbox's ECR endpoint: `skopeo copy`, as a user or a node would see it.

skopeo (Debian's package) follows ECR's redirects to the layer bucket or the upstream's storage exactly as docker and
containerd do, so a pull it completes is a pull a consumer would complete.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox import Sandbox

TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Pulled:
    """What one `skopeo copy` did."""

    ok: bool
    stderr: str
    files: int  # blobs and manifests written to the destination
    bytes: int


def copy(
    ecr_url: str,
    password: str,
    image: str,
    destination: Path,
    *,
    multi_arch: str = "all",
    platform: str | None = None,
) -> Pulled:
    """`skopeo copy docker://<ECR>/<image> dir:<destination>` with ECR's `AWS:<password>` credentials.

    `multi_arch`: all (every platform of an index), system or index-only; `platform` ("linux/arm64") overrides the
    system's own for `system`.
    """
    host = ecr_url.split("://", 1)[1]
    command = ["skopeo"]
    if platform is not None:
        os_name, _, rest = platform.partition("/")
        arch, _, variant = rest.partition("/")
        command += ["--override-os", os_name, "--override-arch", arch]
        if variant:
            command += ["--override-variant", variant]
    command += [
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--src-creds",
        f"AWS:{password}",
        "--multi-arch",
        multi_arch,
        f"docker://{host}/{image}",
        f"dir:{destination}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    written = [p for p in destination.rglob("*") if p.is_file()] if destination.exists() else []
    return Pulled(done.returncode == 0, done.stderr, len(written), sum(p.stat().st_size for p in written))


def sandbox_registries_conf(registries_conf: str, sb: Sandbox) -> str:
    """A generated registries.conf pointed at the sandbox's ECR endpoint: every mirror on ECR's registry host
    (`<account>.dkr.ecr.<region>.amazonaws.com`) moves to the endpoint on 127.0.0.1, with `insecure = true` (plain
    HTTP) on that mirror only; the rest of the file is the user's copy as generated."""
    host = f"{sb.account}.dkr.ecr.{sb.region}.amazonaws.com"
    local = sb.ecr_url.split("://", 1)[1]
    return registries_conf.replace(f'location = "{host}/', f'insecure = true\nlocation = "{local}/')


def pull_by_upstream_name(
    sb: Sandbox, registries_conf: str, image: str, workdir: Path, *, platform: str | None = None
) -> subprocess.CompletedProcess[str]:
    """skopeo pulls `image` by its upstream name (docker.io/library/alpine:3.20) into `workdir`/pulled with only the
    registries.conf `pullthrough pull-config` generated (given by flag and variable alike, as podman and CRI-O read
    it), pointed at the sandbox's ECR endpoint (`sandbox_registries_conf`), and ECR's login for the mirror host as
    `podman login` stores it. `platform` ("linux/arm64") overrides the system's own."""
    conf = workdir / "sandbox-registries.conf"
    conf.write_text(sandbox_registries_conf(registries_conf, sb), encoding="utf-8")
    local = sb.ecr_url.split("://", 1)[1]
    auth = base64.b64encode(f"AWS:{sb.ecr_password}".encode()).decode()
    (workdir / "auth.json").write_text(json.dumps({"auths": {local: {"auth": auth}}}))
    command = ["skopeo", "--registries-conf", str(conf)]
    if platform is not None:
        os_name, arch = platform.split("/")[:2]
        command += ["--override-os", os_name, "--override-arch", arch]
    command += ["copy", "--quiet", "--authfile", str(workdir / "auth.json"), f"docker://{image}"]
    return subprocess.run(
        [*command, f"dir:{workdir / 'pulled'}"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        env={"PATH": os.environ["PATH"], "HOME": str(workdir), "CONTAINERS_REGISTRIES_CONF": str(conf)},
        check=False,
    )
