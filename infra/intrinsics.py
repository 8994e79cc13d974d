"""CloudFormation's intrinsic functions and conditions, resolved as CloudFormation resolves them.

One resolver for everything that reads the cloud template's values: the local AWS deploys the service
from the transformed template (``localaws/stack.py``) and the package tests evaluate its IAM policies
against the ARNs a deployment would have (``tests/package``). The caller says what a resource's ``Ref``
and ``Fn::GetAtt`` are (``Names``); the resolver does the rest: pseudo parameters, template parameters
(given values, else ``Default``), ``Fn::Sub`` (both forms), ``Fn::Join``, ``Fn::Select``, ``Fn::Split``,
``Fn::If`` with ``AWS::NoValue``, and the condition functions. Anything else is refused with its name,
so a template that uses a function this module does not know fails loudly instead of deploying a
literal ``{"Fn::...": ...}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")
NO_VALUE = "AWS::NoValue"
_DROP = object()  # what Ref AWS::NoValue leaves: the key or list item disappears


class IntrinsicError(ValueError):
    """A value the resolver cannot resolve (unknown function, name or attribute)."""


@dataclass(frozen=True)
class Pseudo:
    account_id: str
    region: str
    stack_name: str
    partition: str = "aws"
    url_suffix: str = "amazonaws.com"
    stack_id: str = ""

    def values(self) -> dict[str, str]:
        stack_id = self.stack_id or (
            f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/"
            "00000000-0000-0000-0000-000000000000"
        )
        return {
            "AWS::AccountId": self.account_id,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": stack_id,
        }


@dataclass
class Resolver:
    """Resolves values of one template: ``ref``/``get_att`` answer for its resources."""

    template: Mapping[str, Any]
    pseudo: Pseudo
    ref: Callable[[str], Any]
    get_att: Callable[[str, str], Any]
    parameters: Mapping[str, str] = field(default_factory=dict)
    _conditions: dict[str, bool] = field(default_factory=dict, init=False)

    # -- parameters and conditions ---------------------------------------------------------------

    def parameter(self, name: str) -> Any:
        declared = self.template.get("Parameters", {})
        if name not in declared:
            raise IntrinsicError(f"no parameter or resource named {name}")
        if name in self.parameters:
            value: Any = self.parameters[name]
        elif "Default" in declared[name]:
            value = declared[name]["Default"]
        else:
            raise IntrinsicError(f"parameter {name} has no value and no Default")
        if (
            str(declared[name].get("Type", "")).startswith("List<")
            or declared[name].get("Type") == "CommaDelimitedList"
        ):
            return [item.strip() for item in str(value).split(",")]
        return str(value)

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions", {})
            if name not in conditions:
                raise IntrinsicError(f"no condition named {name}")
            self._conditions[name] = self._truth(conditions[name])
        return self._conditions[name]

    def _truth(self, value: Any) -> bool:
        if isinstance(value, dict) and len(value) == 1:
            (function, argument), *_ = value.items()
            if function == "Condition":
                return self.condition(str(argument))
            if function == "Fn::Equals":
                left, right = (self.resolve(item) for item in argument)
                return str(left) == str(right)
            if function == "Fn::Not":
                return not self._truth(argument[0])
            if function == "Fn::And":
                return all(self._truth(item) for item in argument)
            if function == "Fn::Or":
                return any(self._truth(item) for item in argument)
        raise IntrinsicError(f"not a condition: {value!r}")

    def included(self, resource: Mapping[str, Any]) -> bool:
        """Whether a resource (or output) with an optional ``Condition`` is part of the deployment."""
        condition = resource.get("Condition")
        return condition is None or self.condition(str(condition))

    # -- values ------------------------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        resolved = self._resolve(value)
        return None if resolved is _DROP else resolved

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._resolve(item) for item in value]
            return [item for item in items if item is not _DROP]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), *_ = value.items()
            if key == "Ref":
                return self._ref(str(argument))
            if key.startswith("Fn::"):
                return self._function(key, argument)
        resolved = {key: self._resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _DROP}

    def _ref(self, name: str) -> Any:
        if name == NO_VALUE:
            return _DROP
        pseudo = self.pseudo.values()
        if name in pseudo:
            return pseudo[name]
        if name in self.template.get("Parameters", {}):
            return self.parameter(name)
        if name in self.template.get("Resources", {}):
            return self.ref(name)
        raise IntrinsicError(f"Ref to unknown name {name}")

    def _function(self, function: str, argument: Any) -> Any:
        if function == "Fn::GetAtt":
            name, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
            if name not in self.template.get("Resources", {}):
                raise IntrinsicError(f"Fn::GetAtt of unknown resource {name}")
            return self.get_att(str(name), str(self._resolve(attribute)))
        if function == "Fn::Sub":
            return self._sub(argument)
        if function == "Fn::Join":
            separator, items = argument
            return str(separator).join(str(item) for item in self._resolve(items))
        if function == "Fn::Select":
            index, items = self._resolve(argument)
            return items[int(index)]
        if function == "Fn::Split":
            separator, text = argument
            return str(self._resolve(text)).split(str(separator))
        if function == "Fn::If":
            condition, if_true, if_false = argument
            return self._resolve(if_true if self.condition(str(condition)) else if_false)
        if function in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
            return self._truth({function: argument})
        raise IntrinsicError(f"unsupported intrinsic function {function}")

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        else:
            text, raw = argument
            variables = {str(k): self._resolve(v) for k, v in raw.items()}

        def substitute(match: re.Match[str]) -> str:
            key = match.group(1)
            if key in variables:
                return str(variables[key])
            if "." in key and not key.startswith("AWS::"):
                name, attribute = key.split(".", 1)
                if name not in self.template.get("Resources", {}):
                    raise IntrinsicError(f"Fn::Sub names unknown resource {name}")
                return str(self.get_att(name, attribute))
            return str(self._ref(key))

        # ${!Literal} stays as ${Literal}, as CloudFormation writes it.
        return SUB_VARIABLE.sub(substitute, text).replace("${!", "${")


def references(value: Any) -> set[str]:
    """Names a value refers to (Ref, Fn::GetAtt, and the variables of Fn::Sub), pseudo ones included."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref":
                found.add(str(item))
            elif key == "Fn::GetAtt":
                found.add(str(item.split(".", 1)[0] if isinstance(item, str) else item[0]))
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                local = set() if isinstance(item, str) else set(item[1])
                found |= {
                    name.split(".", 1)[0]
                    for name in SUB_VARIABLE.findall(text)
                    if name not in local and not name.startswith("!")
                }
                if not isinstance(item, str):
                    found |= references(item[1])
            else:
                found |= references(item)
    return found
