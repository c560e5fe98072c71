"""pullthrough/custom_resource.py: CloudFormation's custom resource protocol, on its own and against a local URL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pullthrough import custom_resource
from pullthrough.errors import EventError, PullthroughError
from sandbox import lambdas
from sandbox.aws import cloudformation


def event(**changes: Any) -> dict[str, Any]:
    return {**lambdas.sample_event("config_facts", "create"), **changes}


def test_an_answer_reaches_the_response_url_as_cloudformation_reads_it() -> None:
    # Given a request whose ResponseURL is served on 127.0.0.1
    with cloudformation.response_url() as (url, received):
        request = event(ResponseURL=url)

        # When it is answered with the real sender
        custom_resource.answer(request, lambda _: {"Answer": "42"}, physical_id="p-1")

        # Then CloudFormation's checks pass: one PUT, an empty Content-Type (the URL is signed without one)
        answer = cloudformation.read_answer(request, received)
    assert answer["Data"] == {"Answer": "42"}
    assert received.content_types == [""]


def test_a_failure_is_answered_with_its_reason_never_raised() -> None:
    sent: list[bytes] = []

    def broken(_: custom_resource.Request) -> dict[str, str]:
        raise PullthroughError("rules[0].prefix: duplicate; fix: give each rule its own")

    answer = custom_resource.answer(event(), broken, physical_id="p-1", sender=lambda u, b: sent.append(b))
    assert answer.status == "FAILED"
    assert json.loads(sent[0])["Reason"] == "rules[0].prefix: duplicate; fix: give each rule its own"


def test_an_unexpected_error_still_reaches_cloudformation() -> None:
    sent: list[bytes] = []
    answer = custom_resource.answer(event(), lambda _: {}["x"], physical_id="p-1", sender=lambda u, b: sent.append(b))
    assert answer.status == "FAILED"
    assert (answer.reason or "").startswith("unexpected KeyError")
    assert len(sent) == 1


def test_an_update_keeps_the_physical_id_cloudformation_sent() -> None:
    # A changed id would make CloudFormation replace the resource and delete the old one.
    answer = custom_resource.answer(
        lambdas.sample_event("config_facts", "update"), lambda _: {}, physical_id="another", sender=lambda u, b: None
    )
    assert answer.physical_resource_id == "pullthrough-config-facts"


def test_an_answer_over_4096_bytes_becomes_a_failure_that_says_so() -> None:
    sent: list[bytes] = []
    answer = custom_resource.answer(
        event(), lambda _: {"Big": "x" * 5000}, physical_id="p-1", sender=lambda u, b: sent.append(b)
    )
    assert answer.status == "FAILED"
    assert "4096" in (answer.reason or "")
    assert len(sent[0]) <= custom_resource.MAX_RESPONSE_BYTES


def test_a_very_long_reason_is_shortened_to_fit() -> None:
    sent: list[bytes] = []

    def broken(_: custom_resource.Request) -> dict[str, str]:
        raise PullthroughError("problem " * 2000)

    custom_resource.answer(event(), broken, physical_id="p-1", sender=lambda u, b: sent.append(b))
    assert len(sent[0]) <= custom_resource.MAX_RESPONSE_BYTES
    assert "the rest is in the function's log" in json.loads(sent[0])["Reason"]


def test_a_request_without_a_response_url_cannot_be_answered() -> None:
    request = event()
    del request["ResponseURL"]
    with pytest.raises(EventError) as refused:
        custom_resource.answer(request, lambda _: {}, physical_id="p-1", sender=lambda u, b: None)
    assert "ResponseURL" in str(refused.value)


def test_an_unreachable_response_url_is_an_error_after_a_few_attempts() -> None:
    # Given a URL nothing listens on (the response server is gone once its block ends)
    with cloudformation.response_url() as (url, _):
        pass
    with pytest.raises(PullthroughError) as failed:
        custom_resource.send(url, b"{}")
    assert "could not deliver" in str(failed.value)
