"""moto handles one request at a time, as DynamoDB serialises the writes to one item.

moto is not thread-safe: two concurrent conditional writes to the same DynamoDB item can both succeed. Code that
relies on DynamoDB's conditions under concurrency (the run ledger closing a run exactly once) is exercised with
moto's request handling serialised, which is what the real service guarantees per item.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_lock = threading.RLock()


@contextlib.contextmanager
def serialised() -> Iterator[None]:
    """While inside, every request moto answers through botocore is handled under one lock."""
    from moto.core.botocore_stubber import BotocoreStubber

    before = BotocoreStubber.__call__
    serialise()
    try:
        yield
    finally:
        BotocoreStubber.__call__ = before  # type: ignore[method-assign]


def serialise() -> Any:
    """From now on, for the whole process, every request moto answers is handled under one lock (idempotent);
    returns moto's own handler. A long-lived caller (the bench) uses this: the context manager above undoes the
    patch when its generator is collected, which a context entered and then dropped is at once."""
    from moto.core.botocore_stubber import BotocoreStubber

    current = BotocoreStubber.__call__
    original = getattr(current, "_moto_original", current)
    if original is not current:
        return original

    def one_at_a_time(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        with _lock:
            return original(self, event_name, request, **kwargs)

    one_at_a_time._moto_original = original  # type: ignore[attr-defined]
    BotocoreStubber.__call__ = one_at_a_time  # type: ignore[method-assign]
    return original
