"""The template's functions as Lambda runs them in the sandbox: their code, environment, timeout and role.

`DeployedFunctions` is the part of `sandbox.stack.Stack` that invokes a function the way Lambda would: its
environment from the template's own `Environment` (Globals merged, intrinsics resolved), its Timeout counting down in
the context, and its execution role deciding every AWS call it makes (sandbox/aws/iam.py, sandbox/aws/iam_roles.py).
Separate from the deployment (sandbox/stack.py) and the routing (sandbox/aws/routing.py), which both call `invoke`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sandbox import lambdas
from sandbox.aws import accounts, iam, iam_guard, iam_roles
from sandbox.aws.intrinsics import Intrinsics
from sandbox.template import REPO_ROOT

LAYER_CONFIG = "/opt/pullthrough.yaml"  # where the config layer puts the document (template.yaml, Globals)
CONFIG_SOURCE = REPO_ROOT / "config" / "pullthrough.yaml"  # what `sam build` puts in the config layer


class DeployedFunctions(Intrinsics):
    """The functions of the deployed template; the attributes below are the Stack's (sandbox/stack.py)."""

    extra_env: dict[str, str]
    invocations: list[tuple[str, str]]
    timeouts: dict[str, int]
    principals: dict[str, iam.Principal]

    def functions(self) -> dict[str, str]:
        """Logical id -> the functions/ directory its CodeUri names."""
        out = {}
        for logical_id, resource in self.template.get("Resources", {}).items():
            if resource.get("Type") == "AWS::Serverless::Function":
                code = str(resource["Properties"].get("CodeUri", "")).rstrip("/")
                out[logical_id] = code.rsplit("/", 1)[-1]
        return out

    def environment(self, function: str) -> dict[str, str]:
        """The function's environment as Lambda would set it (Globals merged, intrinsics resolved)."""
        glob = self.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        own = self.template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
        env = {k: self.resolve(v) for k, v in {**glob, **own}.items()}
        env = {k: str(v) for k, v in env.items() if v is not None}
        env.update(AWS_REGION=self.region, AWS_LAMBDA_FUNCTION_NAME=self.physical[function])
        env.update(accounts.environment(self.account, self.region))  # the execution role's keys, in its account
        if env.get("PULLTHROUGH_CONFIG") == LAYER_CONFIG:
            env["PULLTHROUGH_CONFIG"] = str(CONFIG_SOURCE)  # the config layer holds config/pullthrough.yaml
        env.update(self.extra_env)
        return env

    def timeout(self, function: str) -> int:
        """The function's Timeout in seconds (its own, else Globals'), or what a test set in `timeouts`."""
        if function in self.timeouts:
            return self.timeouts[function]
        own = self.template["Resources"][function]["Properties"].get("Timeout")
        glob = self.template.get("Globals", {}).get("Function", {}).get("Timeout", 3)
        return int(self.resolve(own if own is not None else glob))

    def principal(self, function: str) -> iam.Principal:
        """The session the function's code runs as: its execution role, named after the function."""
        if function not in self.principals:
            self.principals[function] = iam_roles.principal_of(self, function)  # type: ignore[arg-type]  # a Stack
        return self.principals[function]

    def invoke(self, function: str, event: dict[str, Any], kind: str = "direct") -> Any:
        """Call a function's handler with its environment in place and its role deciding its AWS calls, as Lambda
        would, its time counting down from its Timeout."""
        self.invocations.append((function, kind))
        iam_guard.install()
        with (
            accounts.own_environment(self.account),
            environment_set(self.environment(function)),
            iam.acting_as(self.principal(function)),
        ):
            context = lambdas.LambdaContext(
                function_name=self.physical[function],
                region=self.region,
                account=self.account,
                remaining_ms=self.timeout(function) * 1000,
            )
            return lambdas.invoke(self.functions()[function], event, context)


@contextmanager
def environment_set(values: dict[str, str]) -> Iterator[None]:
    """`values` in os.environ for the block, what was there before restored after it."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
