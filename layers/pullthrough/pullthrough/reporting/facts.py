"""An item's details as words: sizes, durations, short digests, and the one-line "Details" of an item.

Separate from the layout of a message (render.py): these are the phrases, used in the body and by the CLI
(`human_bytes`), and each kind of fact is phrased in one place.
"""

from __future__ import annotations

from datetime import UTC

from pullthrough.reporting.items import Details, ReportItem


def duration(seconds: float) -> str:
    """4.2 -> "4.2s", 75 -> "1m 15s", 3900 -> "1h 05m"."""
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def human_bytes(count: int) -> str:
    """1536 -> "1.5 KiB"."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def facts_line(item: ReportItem) -> str:
    """The item's details as one short line: digest, platforms, sizes, budget, validity, changes, expiry."""
    return "; ".join([*_whose(item), *_image(item.details), *_state(item.details)])


def _whose(item: ReportItem) -> list[str]:
    """Where the item comes from and what it belongs to: source, rule, upstream, secret."""
    d = item.details
    found: list[str] = []
    if d.member and d.member not in item.subject:
        found.append(f"member {d.member}")
    if d.account and d.account not in item.subject:
        found.append(f"account {d.account}")
    if d.region and d.region not in item.subject:
        found.append(f"region {d.region}")
    if d.counts:
        found.append(", ".join(f"{count:,} {outcome.label}" for outcome, count in d.counts.items()))
    # Facts the subject already states ("rule ghcr", "secret ecr-pullthroughcache/hub") are not repeated.
    if d.source:
        found.append(f"from {d.source}")
    if d.rule and f"rule {d.rule}" not in item.subject:
        found.append(f"rule {d.rule}")
    if d.upstream and d.upstream != d.rule:
        found.append(f"upstream {d.upstream}")
    if d.secret and d.secret not in item.subject:
        found.append(f"secret {d.secret}")
    return found


def _image(d: Details) -> list[str]:
    """The image's facts: digests, platforms, size, bytes moved, pulls spent and left."""
    found: list[str] = []
    if d.digest:
        found.append(short_digest(d.digest))
    if d.previous_digest:
        found.append(f"was {short_digest(d.previous_digest)}")
    if d.platforms:
        # The config's platforms choose what is verified; ECR imports (and the upstream charges) every manifest.
        platforms = ", ".join(d.platforms)
        found.append(f"{platforms} verified of {d.index_manifests} imported" if d.index_manifests else platforms)
    if d.size is not None:
        found.append(human_bytes(d.size))
    if d.bytes_moved:
        found.append(f"{human_bytes(d.bytes_moved)} moved")
    if d.pulls_spent:
        found.append(f"{d.pulls_spent} pull{'s' if d.pulls_spent != 1 else ''}")
    if d.pulls_remaining is not None:
        found.append(f"{d.pulls_remaining:,} pulls left")
    return found


def _state(d: Details) -> list[str]:
    """Validity, expiry, changes, and how long the item took."""
    found: list[str] = []
    if d.valid is not None:
        found.append("valid" if d.valid else "invalid")
    if d.expires:
        found.append(f"expires {d.expires.astimezone(UTC):%Y-%m-%d}")
    if d.changes:
        found.append("; ".join(d.changes))
    if d.seconds is not None:
        found.append(duration(d.seconds))
    return found


def short_digest(digest: str) -> str:
    """sha256:<64 hex> -> sha256:<first 12>."""
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}" if value else digest[:19]
