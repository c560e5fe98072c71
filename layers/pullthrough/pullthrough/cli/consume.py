"""`pullthrough urls` and `pullthrough pull-config`: what consumers need to pull through the cache.

    pullthrough urls                                   image URIs of the warm list and the registry base per rule
    pullthrough pull-config [--format F] [--output-dir DIR]
                                                       .env, registries.conf, containerd hosts.toml, Kyverno policy,
                                                       puller IAM policy, VPC endpoints template (all by default)

Both need the account id: `--account` gives it offline, otherwise STS GetCallerIdentity answers with the current
credentials. Everything else comes from the config (pullthrough.consumers, which never calls AWS).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pullthrough import consumers
from pullthrough.aws import identity
from pullthrough.cli import documents
from pullthrough.cli.common import EXIT_OK, Command, Io, emit, environment, option
from pullthrough.consumers import Artefact, Target
from pullthrough.consumers.images import compose_base
from pullthrough.env import Settings
from pullthrough.errors import AwsError, PullthroughError

ALL = "all"


def add_consume_commands(commands: Any) -> None:
    """`pullthrough urls` and `pullthrough pull-config`."""
    Command(
        "urls",
        urls_command,
        help="ECR URIs of the warm-list images and the registry base of each rule",
        description="Lists where each warm-list image is pulled from in ECR, and each rule's registry base.",
        options=(ACCOUNT_OPTION,),
    ).register(commands)
    Command(
        "pull-config",
        pull_config_command,
        help="configuration for the cache's consumers: .env, registries.conf, containerd, Kyverno, IAM, VPC endpoints",
        description=(
            "Prints (or writes under --output-dir) what pullers need: "
            + "; ".join(f"{f}" for f in consumers.FORMATS)
            + ". Docker Engine cannot use the cache as a registry mirror (registry-mirrors takes no path); the env "
            "format says what works instead."
        ),
        options=(
            option(
                "--format", choices=(*consumers.FORMATS, ALL), default=ALL, help="which artefact (default: all of them)"
            ),
            option("--output-dir", type=Path, metavar="DIR", help="write the files under DIR instead of printing"),
            ACCOUNT_OPTION,
        ),
    ).register(commands)


ACCOUNT_OPTION = option(
    "--account",
    metavar="ID",
    help="the AWS account id of the registry (default: the current credentials' account, from STS)",
)


def target_of(args: argparse.Namespace, settings: Settings, io: Io) -> Target:
    """The registry's account and region: --account, or STS GetCallerIdentity; --region or the environment's."""
    account = args.account
    if account is None:
        io.progress("asking STS for the account id of your credentials (or give --account)...")
        try:
            account = identity.account_id(settings.region)
        except AwsError as exc:
            raise PullthroughError(f"{exc}; or give the registry's account id with --account") from None
    try:
        return Target.of(account, settings.region)
    except consumers.TargetError as exc:
        option = "--region" if str(exc).startswith("region") else "--account"
        raise PullthroughError(f"{option}: {exc}") from None


def urls_command(args: argparse.Namespace, io: Io) -> int:
    """Print the registry bases and the image URIs."""
    settings, config = environment(args)
    target = target_of(args, settings, io)
    images = consumers.cached_images(config, target)
    bases = consumers.registry_bases(config, target)
    document = documents.UrlsDocument(
        exit_code=EXIT_OK,
        target=target,
        registries=list(bases),
        images=list(images),
    )
    emit(io, args, documents.dump(document), _urls_lines(target, bases, images))
    return EXIT_OK


def _urls_lines(
    target: Target, bases: Sequence[consumers.RegistryBase], images: Sequence[consumers.CachedImage]
) -> Iterator[str]:
    yield f"registry {target.registry_host} (account {target.account}, {target.region})"
    yield f"login: aws ecr get-login-password --region {target.region} | docker login --username AWS " + (
        f"--password-stdin {target.registry_host}"
    )
    yield "registry bases (replace the upstream registry in an image name with its base):"
    compose = compose_base(list(bases))
    for base in bases:
        variables = f"{consumers.COMPOSE_VARIABLE}, {base.variable}" if base is compose else base.variable
        yield f"  {base.upstream:<28} -> {base.base}   ({variables})"
    yield f"warm-list images ({len(images)}):"
    for image in images:
        yield f"  {image.uri}" + (f"   ({image.selection})" if image.selection else "")
        yield f"      from {image.upstream}"


def pull_config_command(args: argparse.Namespace, io: Io) -> int:
    """Print the artefacts, or write them under --output-dir."""
    settings, config = environment(args)
    target = target_of(args, settings, io)
    formats = consumers.FORMATS if args.format == ALL else (args.format,)
    built = consumers.artefacts(config, target, formats)
    written = _write(args.output_dir, built) if args.output_dir is not None else None
    document = documents.dump(
        documents.PullConfigDocument(
            exit_code=EXIT_OK,
            target=target,
            artefacts=built,
            written=None if written is None else [str(p) for p in written],
        )
    )
    if written is not None:
        emit(io, args, document, _written_lines(written, built))
        return EXIT_OK
    if not args.json:
        for artefact in built:  # notes on stderr: stdout stays the file itself (pullthrough pull-config ... > file)
            for note in artefact.notes:
                io.warn(f"note ({artefact.format}): {note}")
    emit(io, args, document, _content_lines(built))
    return EXIT_OK


def _content_lines(built: Sequence[Artefact]) -> Iterator[str]:
    files = [f for a in built for f in a.files]
    for file in files:
        if len(files) > 1:
            yield f"# ==> {file.path} <=="
        yield file.text.rstrip("\n")
        if len(files) > 1:
            yield ""


def _written_lines(written: Sequence[Path], built: Sequence[Artefact]) -> Iterator[str]:
    for path in written:
        yield f"wrote {path}"
    for artefact in built:
        for note in artefact.notes:
            yield f"note ({artefact.format}): {note}"


def _write(directory: Path, built: Sequence[Artefact]) -> list[Path]:
    written = []
    for artefact in built:
        for file in artefact.files:
            path = directory / file.path
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(file.text, encoding="utf-8")
            except OSError as exc:
                raise PullthroughError(
                    f"--output-dir: cannot write {path} ({exc.strerror}); give a directory you can write to"
                ) from None
            written.append(path)
    return written
