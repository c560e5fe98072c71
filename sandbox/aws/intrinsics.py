"""CloudFormation's intrinsic functions and conditions, evaluated against the sandbox's deployment.

`Intrinsics` is the part of `sandbox.stack.Stack` that reads a template value the way CloudFormation resolves it at
deploy time (Ref and the pseudo parameters, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::If and the
condition functions; AWS CloudFormation User Guide, "Intrinsic function reference"). Separate so the Stack holds
the deployment and this module the language; it reads the Stack's parameters, physical ids and custom resources.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.aws import cloudformation

PSEUDO = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}


class Intrinsics:
    """Resolve a template node against a deployment: the attributes below are the Stack's (sandbox/stack.py)."""

    stack_name: str
    account: str
    region: str
    parameters: dict[str, Any]
    template: dict[str, Any]
    physical: dict[str, str]
    custom: dict[str, dict[str, Any]]

    @property
    def stack_id(self) -> str:
        """The stack's ARN, as `!Ref AWS::StackId` resolves and CloudFormation's events carry it."""
        return f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{self.stack_name}/sandbox"

    def resolve(self, node: Any) -> Any:
        """Evaluate Ref, Fn::Sub, Fn::GetAtt, Fn::Join, Fn::If, Fn::Select, Fn::Split against this deployment."""
        if isinstance(node, list):
            # AWS::NoValue (an Fn::If's branch) removes the element from a list, as it removes a property
            # (CloudFormation User Guide, "Pseudo parameters reference": AWS::NoValue).
            return [found for found in (self.resolve(item) for item in node) if found is not None]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), *_ = node.items()
            function = self._functions().get(key)
            if function is not None:
                return function(value)
        return {k: self.resolve(v) for k, v in node.items()}

    def _functions(self) -> dict[str, Any]:
        return {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::If": self._if,
        }

    def _get_att(self, value: Any) -> Any:
        res, attr = value if isinstance(value, list) else value.split(".", 1)
        if res in self.custom and f"{res}.{attr}" not in self.physical:
            raise cloudformation.DeployFailed(f"{res}: the custom resource's answer has no {attr}")
        return self.physical.get(f"{res}.{attr}", f"{self.physical.get(res, res)}")

    def _join(self, value: Any) -> str:
        sep, items = value
        return str(sep).join(str(i) for i in self.resolve(items))

    def _select(self, value: Any) -> Any:
        index, items = self.resolve(value)
        return items[int(index)]

    def _split(self, value: Any) -> list[str]:
        sep, text = self.resolve(value)
        return list(text.split(sep))

    def _if(self, value: Any) -> Any:
        condition, yes, no = value
        return self.resolve(yes if self.condition(condition) else no)

    def condition(self, name: str) -> bool:
        return bool(self._evaluate(self.template.get("Conditions", {})[name]))

    def _evaluate(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (key, value), *_ = node.items()
            if key == "Fn::Equals":
                a, b = (self.resolve(self._evaluate(v)) for v in value)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self._evaluate(value[0])
            if key == "Fn::And":
                return all(self._evaluate(v) for v in value)
            if key == "Fn::Or":
                return any(self._evaluate(v) for v in value)
            if key == "Condition":
                return self.condition(value)
        return self.resolve(node)

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::StackId": self.stack_id,
            **PSEUDO,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            value = self.parameters[name]
            declared = self.template.get("Parameters", {}).get(name, {})
            if declared.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                return [v.strip() for v in value.split(",")]
            return value
        return self.physical.get(name, name)

    def _sub(self, value: Any) -> str:
        text, variables = (value[0], self.resolve(value[1])) if isinstance(value, list) else (value, {})

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                return str(self.resolve({"Fn::GetAtt": name.split(".", 1)}))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)
