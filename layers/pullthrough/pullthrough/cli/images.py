"""`pullthrough images`: what warm.sources yield, each reference with its source and place, and the problems.

Reads the files as the deployed functions do (paths relative to the config file), with no AWS call; an ecs source asks
the account (ListTaskDefinitions, DescribeTaskDefinition) with the operator's credentials, as plan_warming does at
plan time. Exit 1 when a source names something that cannot be warmed.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from pullthrough import sources
from pullthrough.cli.common import EXIT_FINDINGS, EXIT_OK, Command, Io, emit, environment
from pullthrough.cli.documents import ImagesDocument, SourceProblemDoc, SourceReferenceDoc, dump
from pullthrough.config import Config
from pullthrough.errors import Problem
from pullthrough.reference import ImageReference
from pullthrough.sources import Reading
from pullthrough.sources import ecs as ecs_source


def add_images_commands(commands: Any) -> None:
    """`pullthrough images`."""
    Command(
        "images",
        images_command,
        help="what warm.sources yield: each image with its source and place, and what cannot be warmed",
        description=(
            "Reads the compose, kubernetes and text sources of the config (paths relative to the config file, as "
            "the deployed functions read them from the config layer) and prints each image reference with the "
            "source and the place that name it, the problems (a digest-only reference, a reference no rule caches, "
            "an unreadable file, an unset variable), and notes (a service built from source). No AWS call, except "
            "for an ecs source: the account's ACTIVE task definitions (ecs:ListTaskDefinitions, "
            "ecs:DescribeTaskDefinition). Exit status 1 when there is a problem."
        ),
    ).register(commands)


def images_command(args: argparse.Namespace, io: Io) -> int:
    """Print what the sources yield; exit 1 on a problem."""
    settings, config = environment(args)
    reading = sources.read(config, ecs=ecs_source.reader_in(config, settings.region))
    code = EXIT_FINDINGS if reading.problems else EXIT_OK
    document = images_document(config, reading, code)
    emit(io, args, dump(document), images_lines(config, document))
    return code


def images_document(config: Config, reading: Reading, code: int) -> ImagesDocument:
    """Every reference at every place, with the cache repository it is warmed in; problems and notes."""
    listed = {(str(image.image.name), tag) for image in config.warm.images for tag in image.fixed_tags}
    references = []
    for item in reading.references:
        reference = _parsed(item.reference)
        rule = config.rule_for(reference)
        references.append(
            SourceReferenceDoc(
                reference=item.reference,
                source=item.source,
                place=item.place,
                repository=rule.cache_repository(reference),
                warm_images=(reference.name, reference.tag or "") in listed,
            )
        )
    return ImagesDocument(
        references=references,
        problems=[_problem(p) for p in reading.problems],
        notes=[_problem(p) for p in reading.notes],
        exit_code=code,
    )


def images_lines(config: Config, document: ImagesDocument) -> Iterator[str]:
    """For people: a line per reference grouped by source, then problems with their fix, then notes."""
    sources = config.warm.sources
    if not sources:
        yield "warm.sources is empty: only warm.images are warmed"
        return
    yield f"{len(document.references)} image reference(s) from {len(sources)} source(s)"
    current = None
    for item in document.references:
        if item.source != current:
            current = item.source
            yield f"{current}:"
        also = " (also in warm.images)" if item.warm_images else ""
        yield f"  {item.reference}  <- {item.place}{also}"
    for problem in document.problems:
        yield f"problem: {problem.location}: {problem.message} (got {problem.value})"
    for note in document.notes:
        yield f"note: {note.location}: {note.message} ({note.value})"


def _parsed(text: str) -> ImageReference:
    return ImageReference.parse(text)


def _problem(problem: Problem) -> SourceProblemDoc:
    return SourceProblemDoc(location=problem.location, value=problem.value, message=problem.message)
