"""The secrets canary (tests/canary.py): what it finds, what it watches, and that a leak really fails a test run.

The leaking tests run in a separate pytest process, once alone and once under xdist as `make test` runs: a leak in
this session would fail this session.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from tests.canary import (
    CANARY_MARKER,
    CANARY_TOKEN,
    Guard,
    canary_secret,
    canary_token,
    session_guard,
    watch,
    watch_credentials,
)

ROOT = Path(__file__).resolve().parents[1]

# --- what the guard finds ------------------------------------------------------------------------------------------


def test_a_canary_token_is_found_in_any_case_and_masked() -> None:
    # Given a guard and text holding a canary token, once as written and once lower-cased
    guard = Guard(watched=set())
    text = f"rotating to {CANARY_TOKEN} (was {CANARY_TOKEN.lower()})"
    # When it scans the text
    found = guard.scan("a log record", text)
    # Then both are leaks, and neither the excerpt nor the mask shows the token
    assert found
    # (one leak: the same place in the same text is recorded once)
    assert [(leak.source, leak.excerpt) for leak in guard.leaks] == [
        ("a log record", "rotating to <secret> (was <secret>)")
    ]
    assert guard.mask(text) == "rotating to <secret> (was <secret>)"
    assert all(CANARY_MARKER.lower() not in str(leak).lower() for leak in guard.leaks)


def test_an_excerpt_never_keeps_part_of_a_token() -> None:
    # Given two tokens close enough that the window around the second one cuts into the first
    guard = Guard(watched=set())
    first, second = canary_token("first"), canary_token("second")
    # When the text is scanned
    excerpts = guard.find(f"{first}{'.' * 20}{second} and more text after it")
    # Then every excerpt shows masks only: no tail of the first token survives the cut
    dots = "." * 20
    assert excerpts == [f"<secret>{dots}<secret> and", f"<secret>{dots}<secret> and more text after it"]
    assert not any(part in excerpt for excerpt in excerpts for part in (first[-8:], second[-8:]))


def test_clean_text_is_no_leak() -> None:
    guard = Guard(watched=set())
    assert not guard.scan("a log record", "secret ecr-pullthroughcache/docker-hub: valid (user canary-bot)")
    assert guard.leaks == []


def test_watched_values_are_found_and_short_ones_ignored() -> None:
    # Given a guard watching a token without the marker, and a value too short to watch
    guard = Guard(watched=set())
    guard.watched.add("dckr_pat_no-marker-but-watched")
    # When text holds both
    found = guard.find("token dckr_pat_no-marker-but-watched and the word short")
    # Then only the watched token is found
    assert found == ["token <secret> and the word short"]


def test_watch_credentials_also_watches_the_basic_authorization_header() -> None:
    # Given credentials registered with watch_credentials
    token = canary_token("basic").replace(CANARY_MARKER, "x")  # no marker: only the registration can find it
    watch_credentials("robot", token)
    header = base64.b64encode(f"robot:{token}".encode()).decode()
    # When the session-wide guard looks at an Authorization header built from them
    guard = Guard()
    # Then it finds it
    assert guard.find(f"Authorization: Basic {header}") == ["Authorization: Basic <secret>"]


def test_sources_are_read_again_at_every_scan() -> None:
    # Given a guard reading a live collection of tokens, as it reads a Sandbox's users
    users: dict[str, str] = {}
    guard = Guard(watched=set())
    guard.sources.append(lambda: list(users.values()))
    assert guard.find("token dckr_pat_added-after-the-guard-was-made") == []
    # When a user is added later
    users["late"] = "dckr_pat_added-after-the-guard-was-made"
    # Then its token is found
    assert guard.find("token dckr_pat_added-after-the-guard-was-made") == ["token <secret>"]


def test_canary_tokens_are_unique_docker_hub_shaped_and_carry_the_marker() -> None:
    tokens = {canary_token("hub"), canary_token("hub"), CANARY_TOKEN}
    assert len(tokens) == 3
    for token in tokens:
        assert re.fullmatch(r"dckr_pat_[A-Za-z0-9_-]+", token)
        assert CANARY_MARKER in token


def test_canary_secret_creates_an_ecr_pullthroughcache_secret_holding_a_canary() -> None:
    # Given a Secrets Manager client (a stand-in recording the call)
    calls: list[dict[str, Any]] = []

    class Client:
        def create_secret(self, **kwargs: Any) -> dict[str, str]:
            calls.append(kwargs)
            return {"ARN": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{kwargs['Name']}-AbCdEf"}

    # When a canary secret is created
    secret = canary_secret(Client(), "ecr-pullthroughcache/docker-hub")
    # Then it is named as ECR wants, holds ECR's JSON shape, and its token is a watched canary
    assert secret.name == calls[0]["Name"] == "ecr-pullthroughcache/docker-hub"
    assert secret.arn.endswith(":secret:ecr-pullthroughcache/docker-hub-AbCdEf")
    assert calls[0]["SecretString"] == f'{{"username": "canary-bot", "accessToken": "{secret.token}"}}'
    assert CANARY_MARKER in secret.token
    assert Guard().find(secret.token.replace(CANARY_MARKER, "")) == [], "only the full token is a secret"


def test_watch_ignores_values_too_short_to_be_tokens() -> None:
    before = set(Guard().watched)
    watch("short", "")
    assert Guard().watched == before


@pytest.mark.sandbox
def test_the_sandbox_users_tokens_are_watched(request: pytest.FixtureRequest, sandbox: Any) -> None:
    # Given the session's sandbox and the tokens its upstream accepts (other tests may add short ones: too short to
    # watch without matching ordinary words)
    guard = session_guard(request.config)
    tokens = [token for token in sandbox.users.values() if len(token) >= 12]
    assert tokens
    # When a text holds one, Then the session guard finds it, marker or not
    for token in tokens:
        assert guard.find(f"pulled with {token}") == ["pulled with <secret>"]


# --- a leak fails the run --------------------------------------------------------------------------------------------

LEAKING_TESTS = """
import base64
import json
import logging

import boto3
import pytest
from moto import mock_aws

from tests.canary import CANARY_TOKEN, canary_secret, watch_credentials

STORED = "dckr_pat_storedInMotoButNoMarker12345"
BASIC_USER, BASIC_TOKEN = "bot", "dckr_pat_basicHeaderNoMarker67890"
URL_TOKEN = "s3cret/with+url?chars&more"


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


@pytest.fixture(autouse=True)
def without_redaction():
    # What is proved here is the guard: pullthrough.redaction (installed when the library logs) is turned off, as a
    # bug in it would be, so each leak reaches the guard as written.
    from pullthrough import observability, redaction
    redaction.uninstall()
    logging.getLogger(observability.SERVICE).removeFilter(redaction.FILTER)
    yield
    redaction.install(observability.SERVICE)


@pytest.fixture
def leaks_at_teardown():
    yield
    logging.getLogger("teardown").warning("closing with %s", CANARY_TOKEN)


def test_clean():
    logging.getLogger("clean").warning("nothing secret here")
    print("nothing secret either")


def test_log_record():
    logging.getLogger("leaky").warning("token is %s", CANARY_TOKEN)


def test_log_record_lower_case():
    logging.getLogger("leaky").error("token is %s", CANARY_TOKEN.lower())


def test_powertools_extra_field():
    from pullthrough.observability import logger
    logger.info("checked", extra={"value": CANARY_TOKEN})


def test_powertools_debug_below_its_level():
    from pullthrough.observability import logger
    logger.setLevel("INFO")
    logger.debug("dev stages log this: %s", CANARY_TOKEN)


def test_stdout():
    print(f"the token: {CANARY_TOKEN}")


def test_exception_caught():
    from pullthrough.errors import SecretError
    with pytest.raises(SecretError):
        raise SecretError("ecr-pullthroughcache/hub", f"value {CANARY_TOKEN} refused")


def test_failure_text():
    raise RuntimeError(f"boom {CANARY_TOKEN}")


def test_report_message():
    from datetime import UTC, datetime
    from pullthrough.reporting.items import ReportItem
    from pullthrough.reporting.model import Report
    from pullthrough.reporting.vocabulary import Kind, Outcome
    now = datetime(2026, 11, 23, tzinfo=UTC)
    item = ReportItem(subject="secret ecr-pullthroughcache/hub", outcome=Outcome.INVALID, reason=f"bad {CANARY_TOKEN}")
    report = Report.model_validate({"kind": Kind.CREDENTIALS, "stack": "s", "region": "us-east-1",
        "account": "123456789012", "run_id": "r", "trigger": "t", "started": now, "finished": now, "items": [item]})
    report.message()


def test_sns_message(aws):
    sns = boto3.client("sns")
    arn = sns.create_topic(Name="reports")["TopicArn"]
    sns.publish(TopicArn=arn, Message=f"report with {CANARY_TOKEN}")


def test_value_stored_in_moto_then_logged(aws):
    boto3.client("secretsmanager").create_secret(
        Name="ecr-pullthroughcache/stored", SecretString=json.dumps({"username": "u", "accessToken": STORED}))
    logging.getLogger("leaky").warning("read %s", STORED)


def test_canary_secret_helper(aws):
    secret = canary_secret(boto3.client("secretsmanager"), "ecr-pullthroughcache/helper")
    logging.getLogger("leaky").warning("read %s", json.dumps(secret.value()))


def test_basic_authorization_header():
    watch_credentials(BASIC_USER, BASIC_TOKEN)
    header = base64.b64encode(f"{BASIC_USER}:{BASIC_TOKEN}".encode()).decode()
    logging.getLogger("urllib3").warning("Authorization: Basic %s", header)


@pytest.mark.parametrize("prefix", ["", "a", "ab"])
def test_base64_at_each_alignment(prefix):
    logging.getLogger("leaky").warning("blob %s", base64.b64encode(f"{prefix}{CANARY_TOKEN}".encode()).decode())


def test_url_encoded():
    from urllib.parse import quote
    watch_credentials("bot", URL_TOKEN)
    logging.getLogger("urllib3").debug("GET /token?scope=x&account=%s HTTP/1.1", quote(URL_TOKEN, safe=""))


def test_inside_a_basic_header_of_a_canary_user():
    header = base64.b64encode(f"someone:{CANARY_TOKEN}".encode()).decode()
    logging.getLogger("botocore.endpoint").debug("headers {'Authorization': 'Basic %s'}", header)


@pytest.mark.xfail(reason="fails anyway", strict=False)
def test_xfail_does_not_hide_a_leak():
    logging.getLogger("leaky").warning("token is %s", CANARY_TOKEN)
    raise AssertionError("expected failure")


def test_leak_in_fixture_teardown(leaks_at_teardown):
    pass
"""

LEAKING_AT_IMPORT = """
import logging
from tests.canary import CANARY_TOKEN
logging.getLogger("import").warning("imported with %s", CANARY_TOKEN)

def test_nothing():
    pass
"""

# Each leaking test, and the words its failure names the leak with.
EXPECTED_FAILURES = {
    "test_log_record": "log record of leaky (WARNING)",
    "test_log_record_lower_case": "log record of leaky (ERROR)",
    "test_powertools_extra_field": "log record of pullthrough (INFO)",
    "test_powertools_debug_below_its_level": "a Powertools debug() call",
    "test_stdout": "captured stdout call",
    "test_exception_caught": "exception SecretError",
    "test_report_message": "a report's SNS message",
    "test_sns_message": "an SNS message",
    "test_value_stored_in_moto_then_logged": "log record of leaky (WARNING)",
    "test_canary_secret_helper": "log record of leaky (WARNING)",
    "test_basic_authorization_header": "log record of urllib3 (WARNING)",
    "test_xfail_does_not_hide_a_leak": "log record of leaky (WARNING)",
    "test_base64_at_each_alignment[]": "log record of leaky (WARNING)",
    "test_base64_at_each_alignment[a]": "log record of leaky (WARNING)",
    "test_base64_at_each_alignment[ab]": "log record of leaky (WARNING)",
    "test_url_encoded": "log record of urllib3 (DEBUG)",
    "test_inside_a_basic_header_of_a_canary_user": "log record of botocore.endpoint (DEBUG)",
}
PYTEST = (sys.executable, "-m", "pytest", "-p", "tests.canary", "-p", "no:cacheprovider", "-q", "-rA")
NOT_MARKED = ("storedInMotoButNoMarker", "basicHeaderNoMarker", "YmFzaWNIZWFkZXJOb01hcmtlcjY3ODkw", "with%2Burl")


def outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """Test name -> (outcome, message) from a JUnit XML file; a teardown error wins over a passed call."""
    result: dict[str, tuple[str, str]] = {}
    # The file is the one this test's own pytest run just wrote.
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = child.tag, (child.get("message") or "") + (child.text or "")
        result[case.get("name", "")] = (outcome, message)
    return result


@pytest.mark.parametrize("mode", ["single process", "xdist"])
def test_every_leak_fails_its_test_and_never_reaches_the_output(tmp_path: Path, mode: str) -> None:
    # Given a test file that leaks the canary in every way the guard watches, and one that leaks at import
    (tmp_path / "test_leaks.py").write_text(LEAKING_TESTS)
    (tmp_path / "test_at_import.py").write_text(LEAKING_AT_IMPORT)
    junit = tmp_path / "junit.xml"
    distribution = ["-n", "2", "--dist", "loadfile"] if mode == "xdist" else ["-p", "no:xdist"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONPATH"))}
    env.update(PYTHONPATH=str(ROOT), CI="false")
    # When pytest runs them with the canary plugin, as `make test` does
    result = subprocess.run(
        [*PYTEST, *distribution, f"--junitxml={junit}", "."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    # Then the run fails
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, output[-3000:]
    # And each leaking test failed, naming where its secret went; the clean tests passed
    seen = outcomes(junit)
    for name, source in EXPECTED_FAILURES.items():
        outcome, message = seen[name]
        assert outcome == "failure", (name, outcome, message[:500])
        assert "leaked during call" in message, (name, message[:500])
        assert source in message, (name, message[:500])
    # And a test failing on its own, with a secret in its exception, keeps its failure, masked and not blamed
    outcome, message = seen["test_failure_text"]
    assert outcome == "failure", message[:500]
    assert "RuntimeError: boom <secret>" in message, message[:500]
    assert "leaked" not in message, message[:500]
    assert seen["test_clean"][0] == "passed"
    assert seen["test_nothing"][0] == "passed"
    # And a leak in a fixture's teardown is an error of that test's teardown
    outcome, message = seen["test_leak_in_fixture_teardown"]
    assert outcome == "error", message[:500]
    assert "leaked during teardown" in message, message[:500]
    # And the leak at import, outside any test, fails the session and is listed at the end
    assert "canary: secrets leaked outside any test" in output
    assert "log record of import (WARNING): ...imported with <secret>..." in output
    # And no secret reaches the terminal or the JUnit file, in any case
    written = (output + junit.read_text()).lower()
    assert CANARY_MARKER.lower() not in written
    assert not [value for value in NOT_MARKED if value.lower() in written]
