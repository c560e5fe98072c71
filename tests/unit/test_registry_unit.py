"""Pure logic of the registry client: challenge, rate-limit, Retry-After and Link parsing, backoff, credentials."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime

import pytest
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError

from pullthrough import redaction
from pullthrough.errors import RegistryAuthError, RegistryError, RegistryTimeout, RegistryUnavailable
from pullthrough.registry.auth import Credentials
from pullthrough.registry.client import RegistryClient
from pullthrough.registry.headers import (
    Challenge,
    RateLimit,
    choose_challenge,
    parse_next_link,
    parse_rate_limit,
    parse_retry_after,
    parse_www_authenticate,
)
from pullthrough.registry.transport import Request, backoff_delay


class TestWwwAuthenticate:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            pytest.param(
                'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"',
                Challenge("bearer", "https://auth.docker.io/token", "registry.docker.io"),
                id="docker-hub-ping",
            ),
            pytest.param(
                'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                'scope="repository:samalba/my-app:pull,push",error="insufficient_scope"',
                Challenge(
                    "bearer",
                    "https://auth.docker.io/token",
                    "registry.docker.io",
                    "repository:samalba/my-app:pull,push",
                    "insufficient_scope",
                ),
                id="comma-inside-quoted-scope",
            ),
            pytest.param(
                'Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
                Challenge("basic", "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/", "ecr.amazonaws.com"),
                id="ecr",
            ),
            pytest.param('basic realm="Registry Realm"', Challenge("basic", "Registry Realm"), id="lower-case-scheme"),
            pytest.param(
                'Bearer  realm = "https://ghcr.io/token" ,  service="ghcr.io",scope="repository:user/image:pull"',
                Challenge("bearer", "https://ghcr.io/token", "ghcr.io", "repository:user/image:pull"),
                id="spaces-around-separators",
            ),
            pytest.param(
                "Bearer realm=https://quay.io/v2/auth,service=quay.io",
                Challenge("bearer", "https://quay.io/v2/auth", "quay.io"),
                id="unquoted-values",
            ),
            pytest.param(
                r'Basic realm="say \"hi\", please"',
                Challenge("basic", 'say "hi", please'),
                id="escaped-quote-and-comma",
            ),
            pytest.param('Bearer REALM="https://x/token"', Challenge("bearer", "https://x/token"), id="param-case"),
        ],
    )
    def test_one_challenge(self, header: str, expected: Challenge) -> None:
        # Given a WWW-Authenticate value as registries send it
        # When it is parsed
        found = parse_www_authenticate(header)
        # Then it yields exactly that challenge
        assert found == [expected]

    def test_several_challenges_prefer_bearer(self) -> None:
        # Given one header with two challenges and another with an unknown scheme
        values = ['Basic realm="r1", Bearer realm="https://a/token",service="s"', "Negotiate abc=="]
        # When parsed and chosen
        found = parse_www_authenticate(values)
        chosen = choose_challenge(found)
        # Then both known challenges are found, unknown schemes skipped, and Bearer wins
        assert [c.scheme for c in found] == ["basic", "bearer"]
        assert chosen == Challenge("bearer", "https://a/token", "s")

    @pytest.mark.parametrize("header", ["", "   ", ",,", '="orphan"', "Negotiate"])
    def test_nothing_usable(self, header: str) -> None:
        # Given a header with no Basic or Bearer challenge
        # When parsed
        # Then there is nothing to answer
        assert parse_www_authenticate(header) == []
        assert choose_challenge([]) is None


class TestRateLimit:
    def test_docker_hub_headers(self) -> None:
        # Given Docker Hub's three headers, in any case
        headers = {
            "RateLimit-Limit": "100;w=21600",
            "ratelimit-remaining": "76;w=21600",
            "Docker-RateLimit-Source": "203.0.113.7",
        }
        # When parsed
        # Then limit, remaining, window and source are known
        assert parse_rate_limit(headers) == RateLimit(100, 76, 21600, "203.0.113.7")

    def test_ietf_draft_list_form(self) -> None:
        # Given the draft's list form (a default quota, then quota policies)
        headers = {"ratelimit-limit": "10, 10;w=1, 50;w=60", "ratelimit-remaining": "9"}
        # When parsed
        # Then the first quota and the first window are used
        assert parse_rate_limit(headers) == RateLimit(10, 9, 1, None)

    def test_absent_headers_mean_no_rate_limit(self) -> None:
        # Given a registry that says nothing about limits (ECR, distribution)
        # When parsed
        # Then there is no RateLimit, rather than one full of zeros
        assert parse_rate_limit({"Content-Type": "application/json"}) is None

    def test_garbage_is_ignored(self) -> None:
        # Given unreadable values
        # When parsed
        # Then the numbers are unknown but the source is kept
        assert parse_rate_limit({"ratelimit-limit": "lots;w=soon", "docker-ratelimit-source": "x"}) == RateLimit(
            None, None, None, "x"
        )


class TestRetryAfter:
    NOW = datetime(2026, 11, 23, 16, 0, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("120", 120.0),
            (" 0 ", 0.0),
            ("Mon, 23 Nov 2026 16:00:30 GMT", 30.0),
            ("Mon, 23 Nov 2026 15:59:00 GMT", 0.0),  # a date in the past: retry now
            ("Mon, 23 Nov 2026 16:00:45 -0000", 45.0),  # RFC 2822's "unknown zone": read as UTC, not a crash
            ("soon", None),
            ("-5", None),
            ("", None),
            (None, None),
        ],
    )
    def test_seconds_or_http_date(self, value: str | None, expected: float | None) -> None:
        # Given a Retry-After value
        # When it is read at a fixed instant
        # Then it gives the seconds to wait, or None when it cannot be read
        assert parse_retry_after(value, now=self.NOW) == expected


class TestLink:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (
                '</v2/library/nginx/tags/list?last=1.25&n=100>; rel="next"',
                "/v2/library/nginx/tags/list?last=1.25&n=100",
            ),
            ("<https://r.example/v2/a/tags/list?n=2&last=b>; rel=next", "https://r.example/v2/a/tags/list?n=2&last=b"),
            ('</p1>; rel="prev", </p3>; rel="next"', "/p3"),
            ('</p3>; title="x"; rel="last next"', "/p3"),
            ('</p1>; rel="prev"', None),
            ("", None),
            (None, None),
        ],
    )
    def test_next_target(self, value: str | None, expected: str | None) -> None:
        # Given a Link header
        # When its next page is looked for
        # Then only a rel="next" target is returned, as written
        assert parse_next_link(value) == expected


class TestBackoff:
    def test_exponential_with_equal_jitter(self) -> None:
        # Given a base of 0.5s
        # When the delays for attempts 0..3 are computed with the lowest and highest jitter
        low = [backoff_delay(a, 0.5, 30.0, 0.0) for a in range(4)]
        high = [backoff_delay(a, 0.5, 30.0, 1.0) for a in range(4)]
        # Then each doubles, and jitter moves a delay between half and all of its ceiling
        assert high == [0.5, 1.0, 2.0, 4.0]
        assert low == [0.25, 0.5, 1.0, 2.0]

    def test_capped(self) -> None:
        # Given a cap of 5s
        # When a late attempt's delay is computed
        # Then it never exceeds the cap
        assert backoff_delay(20, 0.5, 5.0, 1.0) == 5.0
        assert backoff_delay(20, 0.5, 5.0, 7.0) == 5.0  # a jitter out of [0, 1] is clamped


class TestCredentials:
    def test_repr_and_str_never_show_the_password(self) -> None:
        # Given credentials with a recognisable token
        credentials = Credentials("robot", "dckr_pat_SECRET-VALUE")
        # When they are printed every usual way
        shown = [repr(credentials), str(credentials), f"{credentials}", f"{credentials!r}", repr([credentials])]
        # Then the user is shown and the token never is
        assert all("robot" in text and "SECRET" not in text for text in shown)

    def test_making_credentials_masks_the_password_in_every_log_line_from_then_on(self) -> None:
        # Given a password without the shape of a token (only registering it can mask it)
        password = "plain-" + base64.b32encode(os.urandom(10)).decode()
        assert redaction.redact(f"sent {password}") == f"sent {password}"
        # When credentials are made with it
        Credentials("robot", password)
        # Then log lines lose it, as written and inside a Basic header
        basic = base64.b64encode(f"robot:{password}".encode()).decode()
        assert password not in redaction.redact(f"sent {password} and Basic {basic} and {basic}")

    def test_frozen(self) -> None:
        # Given credentials
        credentials = Credentials("robot", "token")
        # When someone tries to change them
        # Then they cannot
        with pytest.raises(AttributeError):
            credentials.password = "other"  # type: ignore[misc]

    def test_client_repr_shows_the_user_only(self) -> None:
        # Given a client holding credentials
        client = RegistryClient("https://ghcr.io", credentials=Credentials("robot", "ghp_SECRET"))
        # When it is printed
        # Then the token is not there
        assert "SECRET" not in repr(client)
        assert "robot" in repr(client)


class TestTokenRealm:
    @pytest.mark.parametrize("realm", [None, "", "registry-realm", "ftp://auth.example/token"])
    def test_a_bearer_challenge_without_an_http_realm_is_an_auth_error_before_any_request(
        self, realm: str | None
    ) -> None:
        # Given a client that was told to get a token from a realm that is no http(s) URL
        client = RegistryClient("https://registry.example", credentials=Credentials("robot", "t0ken-value"))
        # When it asks for a token
        with pytest.raises(RegistryAuthError) as raised:
            client._auth._request_token(Challenge("bearer", realm, "svc"), [None], "team/app")
        # Then it says the challenge names no usable realm, as an authentication failure, without a request sent
        assert "the Bearer challenge names no usable token realm" in str(raised.value)
        assert raised.value.status == 401
        assert client.calls == {}


class TestConnectionErrors:
    @pytest.mark.parametrize(
        ("error", "kind", "words"),
        [
            (ConnectTimeoutError(None, "slow"), RegistryTimeout, "connecting took longer than 5.0s (2 attempts)"),
            (NewConnectionError(None, "refused"), RegistryUnavailable, "cannot connect (2 attempts"),
            (ProtocolError("Connection aborted."), RegistryUnavailable, "the connection failed (2 attempts"),
        ],
    )
    def test_each_connection_failure_names_its_culprit(self, error: Exception, kind: type, words: str) -> None:
        # Given a client that tried twice
        client = RegistryClient("https://registry.example", timeout=5.0, retries=1)
        # When a connection failure is translated
        request = Request("GET", "https://registry.example/v2/team/app/manifests/1", "manifest", "team/app")
        translated = client._transport._connection_error(error, request)  # type: ignore[arg-type]
        # Then a timeout is a timeout, anything else the registry being unreachable, with the attempts counted
        assert type(translated) is kind
        assert words in str(translated)


class TestBaseUrl:
    @pytest.mark.parametrize("url", ["ghcr.io", "ftp://ghcr.io", "https://"])
    def test_refused_with_the_fix(self, url: str) -> None:
        # Given a base URL without an http(s) scheme and host
        # When a client is made
        # Then it is refused, saying what a base URL looks like
        with pytest.raises(RegistryError, match=r"must look like https://host\[:port\]"):
            RegistryClient(url)

    def test_name_defaults_to_host_and_port(self) -> None:
        # Given a base URL with a trailing slash
        client = RegistryClient("http://127.0.0.1:5000/")
        # When nothing else is said
        # Then errors will name the registry by host and port
        assert (client.name, client.base_url) == ("127.0.0.1:5000", "http://127.0.0.1:5000")
