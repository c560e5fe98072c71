"""Load and call the Lambda handlers in `functions/` the way the Lambda runtime does.

Every function's module is called `app`, so each is loaded under its own name (`functions.<name>.app`) from its
file; the context object has the fields Powertools reads.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
EVENTS = ROOT / "events"

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools use."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    region: str = "us-east-1"
    account: str = "123456789012"
    remaining_ms: int = 900_000  # at the start of the invocation (the function's Timeout); it counts down from there
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "sandbox"

    def get_remaining_time_in_millis(self) -> int:
        return max(self.remaining_ms - int((time.monotonic() - self.started) * 1000), 0)


def load(name: str) -> ModuleType:
    """Import functions/<name>/app.py as `functions.<name>.app` (once)."""
    module_name = f"functions.{name}.app"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = FUNCTIONS / name / "app.py"
    if not path.is_file():
        raise FileNotFoundError(f"no handler at {path}")
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def invoke(name: str, event: dict[str, Any], context: LambdaContext | None = None) -> Any:
    """Call functions/<name>/app.py's lambda_handler with an event, as the Lambda runtime would."""
    handler: Handler = load(name).lambda_handler
    return handler(event, context or LambdaContext(function_name=f"pullthrough-{name}"))


def sample_event(name: str, sample: str) -> dict[str, Any]:
    """A sample event from events/<name>/<sample>.json (the same files `sam local invoke -e` takes)."""
    import json

    data: dict[str, Any] = json.loads((EVENTS / name / f"{sample}.json").read_text())
    return data
