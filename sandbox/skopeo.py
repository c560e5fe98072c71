"""A real client's pull through the sandbox's ECR endpoint: `skopeo copy`, as a user or a node would see it.

skopeo (Debian's package) follows ECR's redirects to the layer bucket or the upstream's storage exactly as docker and
containerd do, so a pull it completes is a pull a consumer would complete.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

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
