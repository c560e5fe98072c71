"""moto answers one request at a time where the sandbox or the bench serialise it (sandbox/aws/moto_threads.py).

moto's handler is replaced by one in which every call waits for all the others to arrive: unserialised, they all
meet; serialised, the first one inside waits alone until its wait times out, and no two calls are ever inside at once.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto.core.botocore_stubber import BotocoreStubber

from sandbox.aws import moto_threads

CALLS = 4


@dataclass
class Probe:
    """How many calls were inside moto's (replaced) handler at once."""

    most: int = 0
    inside: int = 0
    guard: threading.Lock = field(default_factory=threading.Lock)
    meet: threading.Barrier = field(default_factory=lambda: threading.Barrier(CALLS))

    def handler(self, stubber: Any, event_name: str, request: Any, **kwargs: Any) -> None:
        with self.guard:
            self.inside += 1
            self.most = max(self.most, self.inside)
        with contextlib.suppress(threading.BrokenBarrierError):  # serialised: the others could not come in
            self.meet.wait(timeout=0.5)
        with self.guard:
            self.inside -= 1

    def call_at_once(self) -> None:
        self.meet.reset()  # a wait that timed out broke it
        start = threading.Barrier(CALLS)

        def call() -> None:
            start.wait()
            BotocoreStubber.__call__(object(), "before-send.test", object())

        workers = [threading.Thread(target=call) for _ in range(CALLS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Probe:
    found = Probe()

    def handler(stubber: Any, event_name: str, request: Any, **kwargs: Any) -> None:
        found.handler(stubber, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", handler)
    return found


def test_serialise_holds_for_the_rest_of_the_process_though_nothing_keeps_a_reference(probe: Probe) -> None:
    # Given moto serialised by a caller that keeps nothing (the bench's correct_moto), and the garbage collected
    moto_threads.serialise()
    gc.collect()
    # When requests arrive at once, Then moto takes them one at a time
    probe.call_at_once()
    assert probe.most == 1


def test_serialised_holds_inside_its_block_and_gives_back_what_was_there(probe: Probe) -> None:
    plain = BotocoreStubber.__call__
    with moto_threads.serialised():
        probe.call_at_once()
    assert probe.most == 1
    assert BotocoreStubber.__call__ is plain
    # And without it, the calls are inside at once (the probe can tell)
    probe.call_at_once()
    assert probe.most == CALLS
