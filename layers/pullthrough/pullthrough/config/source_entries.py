"""The config model of `warm.sources`: files (or, for ecs, the account's task definitions) that name images to warm.

Each source is one mapping told apart by its `kind` (a discriminated union), so a problem names the fields of the
kind at hand. File paths are relative to the config file: they ship in the config layer next to pullthrough.yaml
(config/Makefile copies them keeping their relative paths), so a path may not leave the config's directory.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "SOURCE_KINDS",
    "ComposeSource",
    "EcsSource",
    "KubernetesSource",
    "Source",
    "TextSource",
]

SOURCE_KINDS = ("compose", "kubernetes", "text", "ecs")

_VARIABLE = r"[A-Za-z_][A-Za-z0-9_]*"
_FAMILY = r"[A-Za-z0-9_-]{1,255}"  # botocore's ECS model: a family is up to 255 letters, digits, hyphens, underscores


def _relative_path(value: str) -> str:
    path = PurePosixPath(value)
    if not value or value != value.strip():
        raise ValueError("a file path must not be empty or start or end with spaces")
    if "\\" in value:
        raise ValueError(f"write the path with '/', not '\\' (write {value.replace(chr(92), '/')!r})")
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(
            "the file ships in the config layer next to pullthrough.yaml, so its path is relative to the config's "
            "folder and stays inside it: copy the file into config/ (or a folder under it) and name it like "
            "olake/docker-compose.yml"
        )
    return value


def _family_prefix(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(_FAMILY, value):
        raise ValueError("a task definition family is 1 to 255 letters, digits, '-' or '_', like olake-")
    return value


FilePath = Annotated[
    str,
    AfterValidator(_relative_path),
    Field(description="A path relative to the config file, inside its folder.", examples=["docker-compose.yml"]),
]
Files = Annotated[tuple[FilePath, ...], Field(min_length=1)]
SourceName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: SourceName | None = Field(
        None,
        description="How reports and pullthrough plan name this source; the kind and first file when left out.",
    )


class _FileSource(_Source):
    files: Files = Field(description="The files to read, relative to the config file.")

    @property
    def label(self) -> str:
        """The name reports attribute references to: `name`, or the kind and the first file."""
        return self.name or f"{self.kind_name} {self.files[0]}"

    @property
    def kind_name(self) -> str:
        return str(getattr(self, "kind", ""))

    @property
    def paths(self) -> tuple[str, ...]:
        """Every file this source reads, relative to the config file (what the config layer ships)."""
        return self.files


class ComposeSource(_FileSource):
    """Compose files (docker-compose.yml): each service's image, with Compose's interpolation, profiles and extends."""

    kind: Literal["compose"] = Field(description="compose: Compose files, read as `docker compose config` reads them.")
    env_file: FilePath | None = Field(
        None,
        description=(
            "The .env file interpolation reads, relative to the config file. Left out: .env beside the first file, "
            "when there is one (Compose's own default)."
        ),
    )
    profiles: tuple[Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")], ...] = Field(
        (),
        description="Active profiles (COMPOSE_PROFILES): a service with profiles counts only when one is active.",
    )
    variables: dict[Annotated[str, StringConstraints(pattern=f"^{_VARIABLE}$")], str] = Field(
        default_factory=dict,
        description="Variables for interpolation; they win over the .env file, as the shell's do in Compose.",
    )

    @property
    def default_env_file(self) -> str:
        """The .env file interpolation reads: env_file, or .env beside the first file."""
        if self.env_file is not None:
            return self.env_file
        folder = PurePosixPath(self.files[0]).parent
        return str(folder / ".env") if str(folder) != "." else ".env"

    @property
    def paths(self) -> tuple[str, ...]:
        return (*self.files, self.default_env_file)


class KubernetesSource(_FileSource):
    """Kubernetes manifests, also what `helm template` prints: the images of every workload's containers."""

    kind: Literal["kubernetes"] = Field(
        description="kubernetes: manifests (multi-document YAML, List kinds), e.g. a `helm template` output."
    )


class TextSource(_FileSource):
    """A plain list: one image reference a line; `#` starts a comment."""

    kind: Literal["text"] = Field(description="text: one image reference a line; # starts a comment.")


class EcsSource(_Source):
    """The images of the account's active ECS task definitions, read at plan time (not at build time)."""

    kind: Literal["ecs"] = Field(description="ecs: the images of the account's active ECS task definitions.")
    family_prefix: Annotated[str | None, AfterValidator(_family_prefix)] = Field(
        None, description="Only task definitions whose family starts with this, e.g. olake-; all when left out."
    )

    @property
    def label(self) -> str:
        """The name reports attribute references to: `name`, or ecs and the family prefix."""
        return self.name or ("ecs " + self.family_prefix if self.family_prefix else "ecs")

    @property
    def paths(self) -> tuple[str, ...]:
        return ()


Source = Annotated[
    ComposeSource | KubernetesSource | TextSource | EcsSource,
    Field(discriminator="kind"),
]
