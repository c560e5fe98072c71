"""What `pullthrough status` reads: each rule, each warm-list image and the recent runs, as the account has them.

Only reads: DescribePullThroughCacheRules and ValidatePullThroughCacheRule (ECR), DescribeSecret (the token's
expiry tag, EXPIRES_TAG), DescribeImages (imagePushedAt, lastRecordedPullTime), a HEAD on each upstream
manifest (not a pull on Docker Hub: registry.head_manifest), and the warm runs through warm/runs_view.py (the
ledger's Query, GetItem, BatchGetItem, Scan).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

from pullthrough.aws import ecr, ptc, secrets
from pullthrough.aws.ecr import EcrImage
from pullthrough.cli.documents import ImageStatusDoc, RuleStatusDoc, RunStatusDoc
from pullthrough.config import Config, Rule
from pullthrough.credentials.usage import secret_use
from pullthrough.env import Settings
from pullthrough.errors import AwsError, AwsNotFound, PullthroughError
from pullthrough.registry.client import RegistryClient
from pullthrough.reporting.items import ReportItem
from pullthrough.warm.planner import AwsEcr, Candidate, Decided, Planner, WarmRequest
from pullthrough.warm.runs_view import JobRecord, RunState, RunsView, Verified
from pullthrough.warm.upstream_clients import upstream_client

RECENT = timedelta(days=7)  # runs started this long ago or later are "recent"
RUNS_SHOWN = 10  # the newest runs whose jobs are read for each image's last outcome
Progress = Callable[[str], None]


# --- rules -----------------------------------------------------------------------------------------------------------


def rules_status(config: Config, settings: Settings, today: date) -> list[RuleStatusDoc]:
    """Each config rule: in the account, ECR's validation, its secret and the token's expiry."""
    held = {rule.prefix: rule for rule in ptc.snapshot().rules}
    return [_rule_status(rule, held.get(rule.prefix), config, settings, today) for rule in config.rules]


def _rule_status(rule: Rule, spec: object | None, config: Config, settings: Settings, today: date) -> RuleStatusDoc:
    problems: list[str] = []
    valid, failure = None, None
    if spec is None:
        problems.append(f"ECR has no rule {rule.prefix}: `pullthrough reconcile` (or a deploy) creates it")
    elif rule.secret_name:
        try:
            answer = ptc.validate_rule(rule.prefix)
            valid, failure = answer.is_valid, answer.failure
        except AwsError as exc:
            failure = f"could not ask ECR to validate it: {exc}"
        if valid is False:
            problems.append(f"ECR cannot use the rule's credentials: {failure}")
    exists, expires, left = _secret(rule, config, settings, today, problems)
    return RuleStatusDoc(
        prefix=rule.prefix,
        upstream=rule.upstream_url,
        in_account=spec is not None,
        valid=valid,
        failure=failure,
        secret=rule.secret_name,
        secret_exists=exists,
        expires=expires.isoformat() if expires else None,
        days_left=left,
        problems=problems,
    )


def _secret(
    rule: Rule, config: Config, settings: Settings, today: date, problems: list[str]
) -> tuple[bool | None, date | None, int | None]:
    name = rule.secret_name
    if not name:
        return None, None, None
    try:
        info = secrets.describe(name, region=settings.region)
    except AwsNotFound:
        problems.append(f"secret {name} does not exist: pullthrough credentials set {rule.prefix}")
        return False, None, None
    if info.deleted is not None:
        problems.append(f"secret {name} is scheduled for deletion")
    use = secret_use(name, config, info.tags)
    if use.expires is None:
        return True, None, None
    left = (use.expires - today).days
    if left < 0:
        problems.append(f"the token of {name} expired on {use.expires:%Y-%m-%d}")
    elif left <= use.warn_days:
        problems.append(f"the token of {name} expires in {left} day(s), on {use.expires:%Y-%m-%d}")
    return True, use.expires, left


# --- images ----------------------------------------------------------------------------------------------------------


def images_status(
    config: Config, settings: Settings, ledger: RunsView | None, runs: Sequence[RunState], progress: Progress
) -> list[ImageStatusDoc]:
    """Each warm-list image tag (patterns expanded upstream): ECR's and the upstream's digest, memory, last outcome."""
    clients: dict[str, RegistryClient | PullthroughError | None] = {}

    def upstream(rule: Rule) -> RegistryClient | None:
        if rule.prefix not in clients:
            try:
                clients[rule.prefix] = upstream_client(rule, settings)
            except PullthroughError as exc:  # its secret cannot be read: said per image, not as a crash
                clients[rule.prefix] = exc
        found = clients[rule.prefix]
        if isinstance(found, PullthroughError):
            raise found
        return found

    planner = Planner(config, AwsEcr(settings.region), upstream, keeps_clients=True)
    try:
        candidates, failed = planner.candidates(WarmRequest(trigger="pullthrough status (CLI)"))
        progress(f"looking at {len(candidates)} image(s) in ECR and upstream...")
        held = _held(candidates, settings)
        remembered = _remembered(ledger, candidates)
        last = _last_outcomes(ledger, runs)
        found = [
            _image_status(c, held.get(c.key), upstream, remembered.get((c.repository, c.tag)), last.get(c.key))
            for c in candidates
        ]
    finally:
        for client in clients.values():
            if client is not None and not isinstance(client, PullthroughError):
                client.close()
    return found + [_not_expanded(decided) for decided in failed]


def _held(candidates: Sequence[Candidate], settings: Settings) -> dict[str, EcrImage | AwsError]:
    by_repository: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        by_repository[candidate.repository].append(candidate)
    held: dict[str, EcrImage | AwsError] = {}
    for repository, group in by_repository.items():
        try:
            images = ecr.describe_tags(repository, [c.tag for c in group], settings.region)
        except AwsError as exc:
            held.update({c.key: exc for c in group})
            continue
        held.update({c.key: images[c.tag] for c in group if c.tag in images})
    return held


def _remembered(ledger: RunsView | None, candidates: Sequence[Candidate]) -> dict[tuple[str, str], Verified]:
    if ledger is None or not candidates:
        return {}
    try:
        return ledger.remembered([(c.repository, c.tag) for c in candidates])
    except AwsError:
        return {}


def _last_outcomes(ledger: RunsView | None, runs: Sequence[RunState]) -> dict[str, tuple[str, JobRecord]]:
    """Each image key's job in the newest run that had one (runs decided whole keep no JOB items)."""
    found: dict[str, tuple[str, JobRecord]] = {}
    if ledger is None:
        return found
    for run in list(runs)[:RUNS_SHOWN]:
        for job in ledger.jobs(run.run_id):
            found.setdefault(job.key, (run.run_id, job))
    return found


def _image_status(
    c: Candidate,
    held: EcrImage | AwsError | None,
    upstream: Callable[[Rule], RegistryClient | None],
    verified: Verified | None,
    last: tuple[str, JobRecord] | None,
) -> ImageStatusDoc:
    problems: list[str] = []
    image = None if isinstance(held, AwsError) else held
    if isinstance(held, AwsError):
        problems.append(f"ECR could not be asked: {held}")
    elif held is None:
        problems.append("ECR does not hold it: `pullthrough warm` pulls it through")
    digest = _upstream_digest(c, upstream, problems)
    current = None if image is None or digest is None else image.digest == digest
    if current is False:
        problems.append("the upstream tag moved: the next warm run refreshes it")
    reason, outcome, run_id = _last(last)
    if outcome == "failed":
        problems.append(f"the last run failed it: {reason}")
    return ImageStatusDoc(
        subject=c.subject,
        repository=c.repository,
        tag=c.tag,
        ecr_digest=image.digest if image else None,
        upstream_digest=digest,
        current=current,
        pushed_at=_iso(image.pushed_at) if image else None,
        last_pulled=_iso(image.last_pulled) if image else None,
        platforms_verified=_verified_platforms(verified, image),
        verified_at=_iso(verified.at) if verified else None,
        last_outcome=outcome,
        last_reason=reason,
        last_run=run_id,
        problems=problems,
    )


def _verified_platforms(verified: Verified | None, image: EcrImage | None) -> list[str]:
    """The platforms the ledger remembers verified complete, while ECR's tag still points at that digest."""
    if verified is None or image is None or verified.digest != image.digest:
        return []
    return list(verified.platforms)


def _upstream_digest(
    c: Candidate, upstream: Callable[[Rule], RegistryClient | None], problems: list[str]
) -> str | None:
    try:
        client = upstream(c.rule)
        if client is None:
            return None  # only ECR can reach this upstream (an IAM-role rule): no HEAD from here
        return client.head_manifest(c.upstream_repository, c.tag).digest
    except PullthroughError as exc:
        problems.append(f"the upstream could not be asked: {exc}")
        return None


def _last(last: tuple[str, JobRecord] | None) -> tuple[str | None, str | None, str | None]:
    if last is None:
        return None, None, None
    run_id, job = last
    reason = None
    if job.report_item:
        try:
            reason = ReportItem.model_validate_json(job.report_item).reason
        except ValueError:
            reason = None
    return reason, job.outcome or job.status, run_id


def _not_expanded(decided: Decided) -> ImageStatusDoc:
    item = decided.item
    return ImageStatusDoc(
        subject=item.subject,
        repository=item.details.repository or "",
        tag="",
        problems=[f"{item.reason}" + (f"; fix: {item.fix}" if item.fix else "")],
    )


# --- runs ------------------------------------------------------------------------------------------------------------


def runs_status(ledger: RunsView, now: datetime) -> list[RunState]:
    """Open runs and runs started within RECENT, newest first."""
    return ledger.recent(now - RECENT)


def run_document(run: RunState, open_ids: set[str]) -> RunStatusDoc:
    return RunStatusDoc(
        run_id=run.run_id,
        status=run.status,
        trigger=run.trigger,
        started=_iso(run.started) or "",
        planned=run.planned,
        done=run.done,
        counts=dict(run.counts),
        pulls_spent=run.pulls_spent,
        bytes_moved=run.bytes_moved,
        open=run.run_id in open_ids,
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None
