"""The compose source: each service's image, read as `docker compose config` would (compose-spec).

Files are merged in order (a later file's service keys win), variables come from the .env file and the source's
`variables` (which win, as the shell's do), a service with `profiles` counts only when one of them is active (the
source's `profiles`, else COMPOSE_PROFILES), and `extends` (same file or another) inherits what the service does
not set. Only the fields that decide the image are interpolated (image, profiles, extends, pull_policy), so a
required variable elsewhere, a database password say, need not be known to warm the images.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from pullthrough import safe_yaml
from pullthrough.config.source_entries import ComposeSource
from pullthrough.errors import Problem
from pullthrough.sources.files import read_text
from pullthrough.sources.interpolation import InterpolationError, interpolate, parse_env_file
from pullthrough.sources.resolving import Reading

if TYPE_CHECKING:
    from pullthrough.config import Config

__all__ = ["read"]

_IMAGE_KEYS = ("image", "build", "profiles", "pull_policy")
_MAX_EXTENDS = 16  # a chain longer than this is a loop in all but name


class _Unusable(ValueError):
    """A service whose image cannot be told (a bad extends); the message says what to fix."""


@dataclass
class _Service:
    """A service as the merged files define it: the image-deciding keys and the file that last set them."""

    name: str
    file: str
    keys: dict[str, Any]


@dataclass
class _Project:
    source: ComposeSource
    config: Config
    base: Path
    variables: dict[str, str] = field(default_factory=dict)
    reading: Reading = field(default_factory=Reading)
    documents: dict[str, dict[str, Any] | None] = field(default_factory=dict)


def read(source: ComposeSource, config: Config, base: Path) -> Reading:
    """Every image the active services name, each placed as file → service; services built from source noted."""
    project = _Project(source, config, base)
    project.variables = _variables(project)
    services: dict[str, _Service] = {}
    for name in source.files:
        for service, keys in _services(project, name).items():
            merged = services.get(service)
            services[service] = _Service(service, name, {**(merged.keys if merged else {}), **keys})
    active = _active_profiles(project)
    for defined in services.values():
        _yield(project, defined, active)
    return project.reading


def _variables(project: _Project) -> dict[str, str]:
    source = project.source
    name = source.default_env_file
    found: dict[str, str] = {}
    if source.env_file is not None or (project.base / name).is_file():
        file = read_text(project.base, name, source=source.label)
        if file.problem is not None:
            project.reading.problems.append(file.problem)
        found = parse_env_file(file.text or "", source.variables)
    return {**found, **source.variables}


def _active_profiles(project: _Project) -> set[str]:
    if project.source.profiles:
        return set(project.source.profiles)
    listed = project.variables.get("COMPOSE_PROFILES", "")
    return {profile.strip() for profile in listed.split(",") if profile.strip()}


def _load(project: _Project, name: str) -> dict[str, Any] | None:
    """The services mapping of compose file `name` (relative to the config), or None with a problem recorded."""
    if name in project.documents:
        return project.documents[name]
    project.documents[name] = None
    file = read_text(project.base, name, source=project.source.label)
    if file.problem is not None or file.text is None:
        project.reading.problems.extend([file.problem] if file.problem else [])
        return None
    try:
        document = safe_yaml.load_single(file.text, expected="no compose file needs that many")
    except safe_yaml.YamlProblem as exc:
        where = f"{name}:{exc.line}" if exc.line is not None else name
        project.reading.problems.append(Problem(location=where, value=exc.text or name, message=exc.message))
        return None
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict):
        project.reading.problems.append(
            Problem(
                location=name,
                value=type(document).__name__ if not isinstance(document, dict) else "no services",
                message="not a Compose file: it needs a services: mapping; name the docker-compose.yml here",
            )
        )
        return None
    project.documents[name] = {str(key): value for key, value in services.items()}
    return project.documents[name]


def _services(project: _Project, name: str) -> dict[str, dict[str, Any]]:
    services = _load(project, name) or {}
    return {service: _keys(definition) for service, definition in services.items()}


def _keys(definition: Any) -> dict[str, Any]:
    if not isinstance(definition, dict):
        return {}
    return {key: definition[key] for key in (*_IMAGE_KEYS, "extends") if key in definition}


def _yield(project: _Project, service: _Service, active: set[str]) -> None:
    place = f"{service.file} → {service.name}"
    try:
        keys = _extended(project, service.file, service.keys, 0)
        listed = keys.get("profiles") or []
        profiles = [_text(project, str(p)) for p in (listed if isinstance(listed, list) else [listed])]
        if profiles and not active.intersection(profiles):
            return  # compose-spec: a service with profiles starts only when one of them is active
        image = keys.get("image")
        policy = _text(project, str(keys.get("pull_policy", "")))
        if image is None or policy in ("build", "never"):
            _note_unpulled(project, place, keys, policy)
            return
        interpolated = interpolate(str(image), project.variables)
    except (InterpolationError, _Unusable) as exc:
        value = str(service.keys.get("image") or service.keys.get("extends") or service.name)
        project.reading.problems.append(Problem(location=place, value=value, message=str(exc)))
        return
    before = len(project.reading.problems)
    project.reading.add(interpolated.value, project.config, source=project.source.label, place=place)
    if interpolated.unset and len(project.reading.problems) > before:
        problem = project.reading.problems[-1]
        unset = ", ".join(dict.fromkeys(interpolated.unset))
        project.reading.problems[-1] = Problem(
            location=problem.location,
            value=f"{image} (read as {interpolated.value!r})",
            message=f"{unset} not set, read as empty (set it in the .env file or the source's variables); "
            + problem.message,
        )


def _note_unpulled(project: _Project, place: str, keys: dict[str, Any], policy: str) -> None:
    if "build" not in keys and policy != "never":
        project.reading.problems.append(
            Problem(location=place, value="no image", message="a service needs image: or build:; give it an image")
        )
        return
    reason = f"pull_policy: {policy}" if policy in ("build", "never") else "built from source (build: without image:)"
    project.reading.notes.append(Problem(location=place, value=reason, message="not pulled, so nothing to warm"))


def _extended(project: _Project, file: str, keys: dict[str, Any], depth: int) -> dict[str, Any]:
    """`keys` with what `extends` inherits filled in (the service's own keys win)."""
    extends = keys.get("extends")
    if extends is None:
        return keys
    if depth >= _MAX_EXTENDS:
        raise _Unusable(f"extends goes {_MAX_EXTENDS} services deep: a service extends itself somewhere")
    if isinstance(extends, str):
        extends = {"service": extends}
    if not isinstance(extends, dict) or "service" not in extends:
        raise _Unusable("extends needs a service: extends: {service: base, file: common.yml}")
    target = _text(project, str(extends["service"]))
    other = file
    if "file" in extends:
        other = posixpath.normpath(str(PurePosixPath(file).parent / _text(project, str(extends["file"]))))
        if other.startswith(("../", "/")) or other == "..":
            raise _Unusable(f"extends file {other} is outside the config's folder, so it would not ship; move it in")
    services = _load(project, other)
    if services is None:
        raise _Unusable(f"extends reads {other}, which cannot be used (its own problem says why)")
    if target not in services:
        raise _Unusable(f"extends names service {target!r}, which {other} does not define; fix the name")
    inherited = _extended(project, other, _keys(services[target]), depth + 1)
    own = {key: value for key, value in keys.items() if key != "extends"}
    return {**{k: v for k, v in inherited.items() if k != "extends"}, **own}


def _text(project: _Project, value: str) -> str:
    return interpolate(value, project.variables).value
