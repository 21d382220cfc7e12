"""Reading template.yaml the way CloudFormation would, for the offline runner and the tests.

Only what mirrorcap's own template uses is evaluated: parameters' defaults, Ref, GetAtt, Sub and the
pseudo parameters, with physical names and ARNs supplied by the caller (the emulated account).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"

_SHORT_FORMS = ("Ref", "Condition")
_FN_FORMS = ("GetAtt", "Sub", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or", "FindInMap",
             "Base64", "Cidr", "GetAZs", "ImportValue")  # fmt: skip


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form intrinsic tags (`!Ref x` -> {"Ref": "x"})."""


def _intrinsic(name: str):
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        elif isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
        else:
            raise yaml.constructor.ConstructorError(None, None, f"!{name} on a {type(node).__name__}", node.start_mark)
        return {name: value}

    return construct


for _name in _SHORT_FORMS:
    _CfnLoader.add_constructor(f"!{_name}", _intrinsic(_name))
for _name in _FN_FORMS:
    _CfnLoader.add_constructor(f"!{_name}", _intrinsic(f"Fn::{_name}"))


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


@dataclass
class TemplateContext:
    """Values a deployed stack would have: pseudo parameters, parameter values, physical ids and ARNs."""

    stack_name: str
    region: str
    account_id: str
    parameters: dict[str, str]
    physical_ids: dict[str, str]
    attributes: dict[str, str]  # "Resource.Attribute" -> value

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self._ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            resource, attribute = value["Fn::GetAtt"]
            return self.attributes[f"{resource}.{attribute}"]
        if set(value) == {"Fn::Sub"}:
            return self._sub(value["Fn::Sub"])
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.physical_ids[name]

    def _sub(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if "." in name and not name.startswith("AWS::"):
                return self.attributes[name]
            return self._ref(name)

        return re.sub(r"\$\{([^}!]+)\}", replace, text)


def parameter_defaults(template: dict[str, Any]) -> dict[str, str]:
    return {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in template["Resources"].items() if spec["Type"] == resource_type}
