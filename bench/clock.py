"""The planner's clock moved forward, for a schedule simulated in one process (the repeat run at scale).

The library takes the time as `datetime.now(UTC)` from the name `datetime` it imports at the top of each module
(`from datetime import UTC, datetime`; the ledger's and the importer's clocks are `lambda: datetime.now(UTC)`,
looked up when called). `shift(hours)` replaces that name, in every loaded module of `pullthrough` and of the
sandbox's ECR (its clock, `sandbox.registries.ecr_behaviour.Clock`, and moto_ecr's state read the same name), by a
subclass whose `now()` adds the offset: the planner, the ledger's expiries and ECR's push, pull and re-check times
then move together, so an image pushed at the start is as old as the schedule says. moto's own services (SQS
visibility, DynamoDB) and `time.time()` / `time.monotonic()` keep the real time: nothing the library reads from them
is compared with the shifted clock (ECR's authorization expiry is compared with `time.time()`, both real).

isinstance and issubclass against the replaced name keep answering for real datetimes (the metaclass), and pydantic
models are built before the name is replaced (`build_models`), so none resolves an annotation to the subclass.
"""

from __future__ import annotations

import datetime as _datetime
import sys
from datetime import timedelta
from typing import Any

_REAL = _datetime.datetime
_OFFSET = [timedelta()]
PACKAGES = ("pullthrough", "sandbox.registries.ecr", "sandbox.aws.moto_ecr")


class _Meta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, _REAL)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _REAL)


class ShiftedDatetime(_REAL, metaclass=_Meta):
    """datetime whose now() is the real time plus the bench's offset."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return _REAL.now(tz) + _OFFSET[0]

    @classmethod
    def utcnow(cls) -> Any:
        return _REAL.now(_datetime.UTC).replace(tzinfo=None) + _OFFSET[0]


def build_models() -> int:
    """Build every pydantic model of the loaded library modules now (defer_build ones included); how many."""
    from pydantic import BaseModel

    built = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith("pullthrough") or module is None:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel:
                value.model_rebuild(force=False)
                built += 1
    return built


def install() -> int:
    """Replace `datetime` in the loaded modules of PACKAGES (once); returns how many modules."""
    build_models()
    patched = 0
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(PACKAGES):
            continue
        if getattr(module, "datetime", None) is _REAL:
            module.datetime = ShiftedDatetime  # type: ignore[attr-defined]
            patched += 1
    return patched


def advance(hours: float) -> None:
    """Move the shifted clock forward."""
    _OFFSET[0] += timedelta(hours=hours)


def offset() -> timedelta:
    return _OFFSET[0]
