"""pullthrough.redaction: no secret in any log line, whatever logger wrote it, at whatever level, in whatever form.

The secrets canary (tests/canary.py) watches the whole suite at DEBUG; these tests pin what the redaction itself
masks, and prove it on the real loggers: botocore against moto, urllib3 against a local server, Powertools, the
library's own.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import boto3
import pytest
import urllib3

from pullthrough import redaction
from pullthrough.observability import logger
from pullthrough.redaction import MASK, looks_like_token, redact, register, user_label
from pullthrough.registry.auth import Credentials
from pullthrough.registry.client import RegistryClient
from tests.canary import CANARY_MARKER, canary_token, forms
from tests.fake_aws import fake_aws


@pytest.fixture
def secret() -> str:
    """A registered token without the shape of one (no prefix, short of the random-string rule)."""
    value = "s3cret+Value/with=odd" + canary_token("plain")[-6:]
    register(value)
    return value


def leaks(text: str, value: str) -> list[str]:
    """The forms of `value` (tests/canary.py's own list) still in `text`, compared in any case."""
    lowered = text.lower()
    return [form for form in forms(value) if form.lower() in lowered]


# --- registered values, in every form -------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["", "a", "ab", "abc", "AWS"], ids=["no-user", "1", "2", "3", "AWS"])
def test_a_registered_value_is_masked_inside_basic_at_every_alignment(secret: str, user: str) -> None:
    # Given a Basic header (and a bare base64 blob) carrying the secret after user names of every length mod 3
    encoded = base64.b64encode(f"{user}:{secret}".encode()).decode()
    for text in (f"Authorization: Basic {encoded}", f"blob={encoded}", f"blob={encoded.replace('+', '-')}"):
        # When it is redacted, Then no form of the secret is left
        assert leaks(redact(text), secret) == [], text


def test_a_registered_value_is_masked_as_written_in_any_case_url_encoded_and_json_escaped(secret: str) -> None:
    for text in (secret, secret.upper(), quote(secret, safe=""), json.dumps({"v": secret}), f"x{secret}y"):
        assert leaks(redact(text), secret) == [], text
        assert MASK in redact(text)


@pytest.mark.parametrize("place", ["start", "middle", "end"])
def test_a_registered_value_is_masked_inside_a_longer_base64_document(secret: str, place: str) -> None:
    # Given the secret inside a JSON document that is then base64-encoded (a docker config's auth, a JWT's claims),
    # at every alignment and with data on both sides
    for pad in ("", "x", "xy"):
        document = {
            "start": f'{pad}{secret}","more":"data after it"',
            "middle": f'{{"a":"{pad}{secret}","b":"c"}}',
            "end": f'{{"a":"{pad}{secret}',
        }[place]
        encoded = base64.b64encode(document.encode()).decode()
        # When a line holding it is redacted, Then none of the secret's own base64 is left
        assert leaks(redact(f"config {encoded}"), secret) == [], (place, pad)


@pytest.mark.parametrize("before", [3, 4, 5])
def test_base64_is_masked_on_every_character_the_secret_alone_decides(secret: str, before: int) -> None:
    # Given the secret base64-encoded between other bytes, at each alignment
    raw = b"\x01" * before + secret.encode() + b"\x02" * 4
    encoded = base64.b64encode(raw).decode()
    # Then what is left around the mask is exactly the characters that also carry the other bytes' bits
    first = -(-8 * before // 6)  # the first character made of the secret's bits only
    last = 8 * (before + len(secret.encode())) // 6
    assert redact(f"blob {encoded} end") == f"blob {encoded[:first]}{MASK}{encoded[last:]} end"


def test_a_value_with_characters_json_escapes_is_masked_in_json_lines() -> None:
    # Given a password holding a quote and a backslash, registered
    value = 'pa"ss\\word-' + canary_token()[-8:]
    register(value)
    # When it appears in a JSON log line (Powertools writes JSON), Then the escaped form is masked too
    line = redact(json.dumps({"message": f"refused {value}"}))
    assert line == json.dumps({"message": f"refused {MASK}"})


def test_a_value_of_the_minimum_length_is_masked() -> None:
    value = "Ab3$" + "x9Z!"  # exactly MIN_REGISTERED characters
    assert len(value) == redaction.MIN_REGISTERED
    register(value)
    assert redact(f"pw {value}.") == f"pw {MASK}."


def test_a_value_that_begins_another_never_leaves_the_longer_ones_tail() -> None:
    # Given two registered values, one the beginning of the other
    short, long = "prefix-" + canary_token()[-10:], None
    long = short + "-and-its-tail-9"
    register(long, short)
    # When the longer one is logged, Then all of it is masked, not its first part only
    assert redact(f"value {long} end") == f"value {MASK} end"


def test_an_empty_registry_masks_nothing_and_a_full_one_forgets_the_oldest() -> None:
    # Given a registry of its own (the process-wide one is shared by every test)
    registry = redaction.Registry()
    # Then with nothing registered there is no pattern at all
    assert registry.pattern() is None
    # When more values than it keeps are registered
    values = [f"value-{number:04d}-xyz" for number in range(redaction.MAX_REGISTERED + 5)]
    for value in values:
        registry.add(value)
    pattern = registry.pattern()
    # Then it keeps the newest MAX_REGISTERED: the oldest are no longer matched, the newest are
    assert pattern is not None
    assert pattern.search(values[0]) is None
    assert pattern.search(values[5]) is not None
    assert pattern.search(values[-1]) is not None


def test_short_values_are_not_registered() -> None:
    # Given a value too short to tell from a word
    register("abc123")
    # Then text holding it is left alone (no token is this short; masking it would mask words)
    assert redact("step abc123 done") == "step abc123 done"


# --- fields, headers, URLs and shapes --------------------------------------------------------------------------------

TOKEN = "plainTokenNoShape" + "x" * 4  # not registered: these rules work without knowing the value


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            f'{{"SecretString": "{{\\"username\\": \\"bob\\", \\"accessToken\\": \\"{TOKEN}\\"}}"}}', id="json"
        ),
        pytest.param(
            f"""b'{{"SecretString":"{{\\\\"username\\\\":\\\\"bob\\\\",\\\\"accessToken\\\\":\\\\"{TOKEN}\\\\"}}"}}'""",
            id="botocore-bytes-repr",
        ),
        pytest.param(f"{{'SecretString': '{{\"accessToken\": \"{TOKEN}\"}}', 'Name': 'x'}}", id="parsed-dict"),
        pytest.param(f'{{"authorizationData": [{{"authorizationToken": "{TOKEN}"}}]}}', id="ecr-token"),
        pytest.param(f"{{'headers': {{'Authorization': b'Basic {TOKEN}'}}}}", id="header-in-a-dict"),
        pytest.param(f'{{"password": "{TOKEN}"}}', id="password"),
        pytest.param(f"Authorization: Bearer {TOKEN}", id="bearer-header"),
        pytest.param(f"proxy-authorization: Basic {TOKEN}", id="proxy-header"),
        pytest.param(f"sent Basic {TOKEN} to the realm", id="basic-scheme"),
        pytest.param(f"via https://proxyuser:{TOKEN}@proxy.internal:3128/", id="proxy-password"),
        pytest.param(f"GET /token?scope=repository%3Aa%3Apull&account={TOKEN} HTTP/1.1", id="realm-account"),
        pytest.param(f"GET /blob?X-Amz-Security-Token={TOKEN}&X-Amz-Signature=ab", id="presigned-url"),
    ],
)
def test_sensitive_fields_headers_and_urls_are_masked(text: str) -> None:
    # When a line carrying a credential the way botocore, urllib3 or a message would is redacted
    clean = redact(text)
    # Then the credential is gone, and the line still says what it was
    assert TOKEN not in clean
    assert MASK in clean


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: Bearer {TOKEN}", f"Authorization: Bearer {MASK}"),
        (f"proxy-authorization = Basic {TOKEN}, next", f"proxy-authorization = Basic {MASK}, next"),
        (f"X-Amz-Security-Token: {TOKEN}", f"X-Amz-Security-Token: {MASK}"),
        (f"sent Basic {TOKEN} to the realm", f"sent Basic {MASK} to the realm"),
        (
            f"GET /token?service=s&account={TOKEN}&scope=x HTTP/1.1",
            f"GET /token?service=s&account={MASK}&scope=x HTTP/1.1",
        ),
        (f"via https://proxyuser:{TOKEN}@proxy.internal:3128/", f"via https://proxyuser:{MASK}@proxy.internal:3128/"),
        (f'{{"password": "{TOKEN}", "user": "bob"}}', f'{{"password": "{MASK}", "user": "bob"}}'),
    ],
)
def test_a_masked_line_still_says_what_was_there(text: str, expected: str) -> None:
    # The header, scheme, parameter or field name stays: a reader still sees that a credential went, not which
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            '{"body": "{\\"password\\": \\"T0ps3cret\\", \\"user\\": \\"bob\\"}"}',
            '{"body": "{\\"password\\": \\"<redacted>\\", \\"user\\": \\"bob\\"}"}',
            id="json-in-a-json-string",
        ),
        pytest.param(
            """b'{"SecretString":"{\\\\"username\\\\":\\\\"bob\\\\",\\\\"accessToken\\\\":\\\\"T0ps3cret\\\\"}","Name":"n"}'""",
            """b'{"SecretString":"<redacted>","Name":"n"}'""",
            id="bytes-repr-of-a-response",
        ),
        pytest.param("{'password': 123456789, 'user': 'bob'}", "{'password': <redacted>, 'user': 'bob'}", id="number"),
        pytest.param("{'SecretBinary': <memory at 0x7f>}", "{'SecretBinary': <redacted>}", id="object-repr"),
        pytest.param('{"password": "T0ps3cret-cut off', '{"password": "<redacted>', id="unterminated"),
        pytest.param('"password": "", "user": "bob"', '"password": "<redacted>", "user": "bob"', id="empty"),
        pytest.param("{'password': 123456789", "{'password': <redacted>", id="unquoted-at-the-end"),
    ],
)
def test_a_sensitive_field_is_masked_to_exactly_its_own_end(text: str, expected: str) -> None:
    # At every depth of escaping the value ends where its own quote closes it: the fields after it stay readable
    assert redact(text) == expected


def test_the_rest_of_a_payload_survives() -> None:
    # Given a Secrets Manager response body
    body = '{"ARN": "arn:aws:secretsmanager:us-east-1:1:secret:x", "SecretString": "{\\"a\\": \\"b\\"}", "Name": "x"}'
    # Then only the value is masked: the secret's name and ARN stay, as a log line about it needs
    assert (
        redact(body)
        == f'{{"ARN": "arn:aws:secretsmanager:us-east-1:1:secret:x", "SecretString": "{MASK}", "Name": "x"}}'
    )


@pytest.mark.parametrize(
    "token",
    [
        "dckr_pat_" + "Ab1" * 9,
        "ghp_" + "Ab1" * 12,
        "github_pat_" + "Ab1_" * 10,
        "glpat-" + "Ab1-" * 5,
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLWJ5dGVz",
    ],
)
def test_token_shapes_are_masked_without_being_registered(token: str) -> None:
    assert redact(f"user {token} refused") == f"user {MASK} refused"


@pytest.mark.parametrize(
    "text",
    [
        "the Bearer challenge names no usable token realm",
        "demands credentials (Basic auth) and none were given",
        'WWW-Authenticate: Bearer realm="https://auth.docker.io/token",service="registry.docker.io"',
        "secret ecr-pullthroughcache/docker-hub (AWSCURRENT) accepted user 'canary-bot'",
        "sha256:" + "ab" * 32,
        "promoted to AWSCURRENT token=3f2a9c4e-1b2c-4d5e-8f90-123456789abc",
    ],
)
def test_ordinary_lines_are_left_alone(text: str) -> None:
    assert redact(text) == text


# --- what looks like a token ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "dckr_pat_2YotnFZFEjr1zCsicMWpAAxyz",
        "ghp_" + "aB3dE5" * 6,
        "glpat-xK9mQ2vL8nR4tY6wZ1aB",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.abc",
        base64.b64encode(bytes(range(10, 40))).decode(),
        "UQ2WKCUSIE2LV0ZQJX2LLRZB6S96B8PMC5G5JUHO7VQ1D8Y2H8GM6A1MRS73X3GT",  # a Quay robot token
    ],
)
def test_tokens_look_like_tokens(value: str) -> None:
    assert looks_like_token(value)
    assert user_label(value) == "the user named in the secret"


@pytest.mark.parametrize(
    "value",
    [
        "bob",
        "canary-bot",
        "AWS",
        "olakego",
        "acme+deployer",
        "gitlab+deploy-token-1234567",
        "first.last@example.com",
        "3f2a9c4e-1b2c-4d5e-8f90-123456789abc",  # an Azure service principal's application id
        "45a0c61ea6fd977f050c5fb9ac06a69eed764595/b6d2e6e5c0b5d2d0",  # a Chainguard identity
        "MyCompanyContinuousIntegrationBot2024",
    ],
)
def test_user_names_do_not(value: str) -> None:
    assert not looks_like_token(value)
    assert user_label(value) == f"user {value!r}"


# --- the real loggers, all at DEBUG -----------------------------------------------------------------------------------


@pytest.fixture
def every_line() -> Iterator[io.StringIO]:
    """Every record of the process as a plain handler on the root logger would write it, every logger at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    redaction.install()  # a handler added after the library was imported gets the extras filter too
    levels = {name: logging.getLogger(name).level for name in ("botocore", "urllib3", logger.name)}
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def test_botocore_at_debug_logs_no_secret_value_and_no_ecr_token(every_line: io.StringIO) -> None:
    # Given secrets stored, staged and read, and an ECR authorization token asked for, with botocore at DEBUG
    token, pending = canary_token("botocore"), canary_token("pending")
    with fake_aws("us-east-1"):
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(
            Name="ecr-pullthroughcache/a", SecretString=json.dumps({"username": "u", "accessToken": token})
        )
        client.put_secret_value(
            SecretId="ecr-pullthroughcache/a",
            SecretString=json.dumps({"username": "u", "accessToken": pending}),
            VersionStages=["AWSPENDING"],
        )
        client.get_secret_value(SecretId="ecr-pullthroughcache/a", VersionStage="AWSPENDING")
        answer = boto3.client("ecr", region_name="us-east-1").get_authorization_token()
    ecr_token = answer["authorizationData"][0]["authorizationToken"]
    password = base64.b64decode(ecr_token).decode().partition(":")[2]
    text = every_line.getvalue()
    # Then botocore logged the calls (the test would prove nothing otherwise), and none of the values
    assert "GetSecretValue" in text
    assert "GetAuthorizationToken" in text
    assert '"SecretString": "<redacted>"' in text
    for value in (token, pending, ecr_token, password):
        assert leaks(text, value) == [], value[:4]


class _Realm(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"token": "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJl"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def test_urllib3_and_the_registry_client_at_debug_log_no_credential(every_line: io.StringIO) -> None:
    # Given a token realm on 127.0.0.1, and credentials whose token is a canary
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Realm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = canary_token("urllib3")
    try:
        client = RegistryClient("http://127.0.0.1:1", credentials=Credentials("robot", token))
        realm = f"http://127.0.0.1:{server.server_address[1]}/token"
        from pullthrough.registry.headers import Challenge

        # When the client asks the realm for a token (urllib3 logs the request line at DEBUG)
        client._auth._request_token(Challenge("bearer", realm, "svc"), ["repository:a/b:pull"], "a/b")
        pool = urllib3.PoolManager()
        pool.request("GET", f"{realm}?account={quote(token)}", headers={"Authorization": f"Bearer {token}"})
    finally:
        server.shutdown()
        server.server_close()
    text = every_line.getvalue()
    # Then urllib3 logged the requests, and neither the token nor the user name travelled in a query
    assert "GET /token?" in text
    assert "account=robot" not in text
    assert leaks(text, token) == []


def test_install_is_idempotent_and_uninstall_gives_back_the_factory_it_replaced() -> None:
    # Given the redaction installed (importing the library's logger did it)
    installed = logging.getLogRecordFactory()
    # When it is installed again, Then nothing is stacked: the factory is the same one
    redaction.install()
    redaction.install()
    assert logging.getLogRecordFactory() is installed
    # When it is uninstalled, Then records are made as before it, unredacted (what test_canary relies on)
    redaction.uninstall()
    try:
        record = logging.getLogRecordFactory()("n", logging.INFO, "p", 1, "Bearer %s", ("not-a-secret-1234",), None)
        assert record.getMessage() == "Bearer not-a-secret-1234"
    finally:
        redaction.install()
    assert logging.getLogRecordFactory() is not installed  # a fresh one, redacting again
    assert redact("Bearer not-a-secret-1234") == f"Bearer {MASK}"


def test_a_record_keeps_a_mapping_message_a_mapping_and_loses_secrets_in_its_stack(secret: str) -> None:
    # Given records made the way loggers make them: a mapping as the message, and a stack that quotes the secret
    make = logging.getLogRecordFactory()
    mapping = make("n", logging.INFO, "p", 1, {"token": f"Bearer {secret}", "n": 1}, None, None)
    stacked = make("n", logging.INFO, "p", 1, "step", None, None, sinfo=f"Stack:\n  login({secret!r})")
    # Then the mapping is still one (Powertools writes it as a JSON object), its text redacted, and so is the stack
    assert mapping.msg == {"token": f"Bearer {MASK}", "n": 1}
    assert stacked.stack_info == f"Stack:\n  login('{MASK}')"


def test_fields_given_with_extra_are_redacted_for_every_handler(every_line: io.StringIO) -> None:
    # Given a handler that writes a record's extra fields (as Lambda's JSON log format does), and a registered secret
    token = "extra-Not-A-Canary-" + canary_token()[-10:].replace(CANARY_MARKER, "")
    register(token)
    seen: list[object] = []

    class Fields(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((getattr(record, "value", None), getattr(record, "header", None)))

    handler = Fields()
    logging.getLogger().addHandler(handler)
    redaction.install()
    try:
        # When the library logs the secret in extra fields
        logger.info("checked", extra={"value": {"nested": [token]}, "header": f"Bearer {token}"})
    finally:
        logging.getLogger().removeHandler(handler)
    # Then the handler got them redacted, their shape kept
    assert seen == [({"nested": [MASK]}, f"Bearer {MASK}")]


def test_powertools_and_the_library_at_debug_log_no_secret(every_line: io.StringIO) -> None:
    # Given a registered secret (not a canary: the guard would rightly fail this test for handing it to the logger),
    # and Powertools' logger at DEBUG writing its JSON lines (to a buffer here)
    token = "pt-Not-A-Canary-" + canary_token()[-12:].replace(CANARY_MARKER, "")
    register(token)
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    json_lines = io.StringIO()
    stdout = handler.setStream(json_lines)
    logger.append_keys(leaked_key=f"Bearer {token}")
    try:
        # When the library logs it in a message, an argument, an extra field, an appended key and an exception
        logger.debug("token %s", token, extra={"value": {"nested": [token]}})
        try:
            raise RuntimeError(f"boom {token}")
        except RuntimeError:
            logger.exception("failed")
        logging.getLogger("pullthrough.anything").debug("child logger %s", quote(token, safe=""))
    finally:
        logger.remove_keys(["leaked_key"])
        handler.setStream(stdout)
    written = json_lines.getvalue() + every_line.getvalue()
    # Then the lines were written, structured, and no form of the secret is in them
    first = json.loads(json_lines.getvalue().splitlines()[0])
    assert (first["message"], first["value"], first["leaked_key"]) == (
        f"token {MASK}",
        {"nested": [MASK]},
        f"Bearer {MASK}",
    )
    assert "RuntimeError: boom <redacted>" in written
    assert leaks(written, token) == []


def test_assumed_role_keys_in_an_sts_xml_answer_are_masked() -> None:
    # Given the raw AssumeRole answer botocore logs at DEBUG (STS answers in XML; STS API Reference, AssumeRole)
    body = (
        "b'<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAEXAMPLEKEYID</AccessKeyId>"
        "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>"
        "<SessionToken>FwoGZXIvYXdzEBYaDHqa0AP1/fake+session/token==</SessionToken>"
        "<Expiration>2026-12-07T23:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>'"
    )
    # When it is redacted, Then the secret key and the session token are masked, the rest is kept
    masked = redaction.redact(body)
    assert "wJalrXUtnFEMI" not in masked
    assert "FwoGZXIvYXdz" not in masked
    assert "<SecretAccessKey><redacted></SecretAccessKey>" in masked
    assert "<AccessKeyId>ASIAEXAMPLEKEYID</AccessKeyId>" in masked
    assert "<Expiration>2026-12-07T23:00:00Z</Expiration>" in masked
