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

    original = BotocoreStubber.__call__

    def one_at_a_time(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        with _lock:
            return original(self, event_name, request, **kwargs)

    BotocoreStubber.__call__ = one_at_a_time  # type: ignore[method-assign]
    try:
        yield
    finally:
        BotocoreStubber.__call__ = original  # type: ignore[method-assign]
