"""CPU by whom: Pullthrough's own, apart from the stand-ins that share its process.

The bench process runs the functions (Pullthrough), and beside them, in the same process, what stands in for AWS
and the registries' Python front ends: moto (every AWS call is answered in the calling thread, inside botocore's
`before-send` stubber), the sandbox's ECR (its import threads and its registry endpoint) and the upstream front, the
bench's own SQS polling (Lambda's event source). Process CPU alone would charge all of it to Pullthrough.

`StandIns` measures the stand-ins' share as thread CPU time (`time.thread_time`, the calling thread's user + system
time) around each piece of their work, counted once at the outermost level per thread (moto called from a sandbox
handler is not counted twice):

    moto        moto's stubber (`BotocoreStubber.__call__`): parsing the request, the backends, the response
    sandbox     each HTTP request the sandbox's loopback servers handle (upstream front, ECR endpoint, fault proxy),
                the sandbox ECR's background import tasks (its `ecr-import` threads), and the sandbox's IAM check of
                each AWS call (`sandbox.aws.iam_guard._check`: it runs in the caller's thread before moto, and
                stands in for IAM's evaluation, which AWS does on its side, not in the Lambda)
    bench       the event source's polling (receive, delete) through the bench's own session, client side included

Pullthrough's own CPU = the process's CPU (os.times) minus these. What stays in it that is not Pullthrough: botocore's
client side of the library's calls (serialising, signing, parsing: a Lambda pays it too, so it belongs), and the
bench's invoke plumbing (building events; small). The registries (distribution processes) and skopeo are other
processes and are counted apart (`harness.Cpu`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

KINDS = ("moto", "sandbox", "bench")


class StandIns:
    """Thread CPU seconds of the stand-ins, by kind; thread-safe; outermost measurement per thread only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self.seconds: defaultdict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def measure(self, kind: str) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        started = time.thread_time() if depth == 0 else 0.0
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                spent = time.thread_time() - started
                with self._lock:
                    self.seconds[kind] += spent

    def wrap(self, kind: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def measured(*args: Any, **kwargs: Any) -> Any:
            with self.measure(kind):
                return function(*args, **kwargs)

        measured._bench_measured = function  # type: ignore[attr-defined]
        return measured

    def snapshot(self) -> defaultdict[str, float]:
        with self._lock:
            return defaultdict(float, self.seconds)

    def total(self) -> float:
        with self._lock:
            return sum(self.seconds.values())


STAND_INS = StandIns()


def install() -> StandIns:
    """Measure moto, the sandbox's servers and import threads (idempotent, for the rest of the process)."""
    from concurrent.futures import thread as futures_thread

    from moto.core.botocore_stubber import BotocoreStubber

    from sandbox.aws import iam_guard
    from sandbox.registries.loopback import ForwardingHandler

    current = BotocoreStubber.__call__
    if not hasattr(current, "_bench_measured"):
        measured = STAND_INS.wrap("moto", current)
        # sandbox.aws.moto_threads.serialise() finds moto's own handler through this attribute.
        measured._moto_original = getattr(current, "_moto_original", current)  # type: ignore[attr-defined]
        BotocoreStubber.__call__ = measured  # type: ignore[method-assign]
    check = iam_guard._check
    if not hasattr(check, "_bench_measured"):
        iam_guard._check = STAND_INS.wrap("sandbox", check)
    handle = ForwardingHandler.handle_one_request
    if not hasattr(handle, "_bench_measured"):
        ForwardingHandler.handle_one_request = STAND_INS.wrap("sandbox", handle)  # type: ignore[method-assign]
    run = futures_thread._WorkItem.run
    if not hasattr(run, "_bench_measured"):

        def work(item: Any) -> None:
            if threading.current_thread().name.startswith("ecr-import"):
                with STAND_INS.measure("sandbox"):
                    run(item)
            else:
                run(item)

        work._bench_measured = run  # type: ignore[attr-defined]
        futures_thread._WorkItem.run = work  # type: ignore[method-assign,assignment]
    return STAND_INS
