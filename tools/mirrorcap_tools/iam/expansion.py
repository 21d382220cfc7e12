"""template.yaml as CloudFormation sees it after the SAM transform, resolved for one concrete stack.

The SAM translator runs offline: it is given no managed-policy map (the template names AWS managed
policies by ARN, so it never needs one) and a boto session that only supplies the region. Intrinsics are
then resolved for account 123456789012, us-east-1, stack `mirrorcap`, with made-up but well-formed
physical names, so every policy becomes the concrete document IAM would evaluate.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

import boto3
from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]  # ships no py.typed
from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]

from mirrorcap_tools.template import load_template, parameter_defaults

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "mirrorcap"
PARTITION = "aws"
NO_VALUE = object()


@dataclass(frozen=True)
class Statement:
    policy: str  # "LaunchCollectorFunctionRole/LaunchCollectorFunctionRolePolicy0" or "CleanupPolicy"
    index: int
    document: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.policy}#{self.index}" + (f" ({self.sid})" if self.sid else "")

    @property
    def sid(self) -> str:
        return self.document.get("Sid", "")

    @property
    def effect(self) -> str:
        return self.document["Effect"]

    def _list(self, key: str) -> list[str] | None:
        value = self.document.get(key)
        return None if value is None else [value] if isinstance(value, str) else list(value)

    @property
    def actions(self) -> list[str]:
        return self._list("Action") or []

    @property
    def not_actions(self) -> list[str] | None:
        return self._list("NotAction")

    @property
    def resources(self) -> list[str]:
        return self._list("Resource") or []

    @property
    def not_resources(self) -> list[str] | None:
        return self._list("NotResource")

    @property
    def condition(self) -> dict[str, dict[str, Any]]:
        return self.document.get("Condition", {})


@dataclass
class Role:
    name: str  # logical id
    arn: str
    statements: list[Statement] = field(default_factory=list)
    aws_managed_policies: list[str] = field(default_factory=list)  # ARNs; their documents are not offline


@dataclass
class Stack:
    template: dict[str, Any]  # expanded and resolved
    roles: dict[str, Role]
    managed_policies: dict[str, list[Statement]]  # customer managed, by logical id
    function_roles: dict[str, str]  # function logical id -> role logical id

    def role_of(self, principal: str) -> Role:
        """A function's role, or a role by its own logical id."""
        return self.roles[self.function_roles.get(principal, principal)]

    def statements(self) -> list[Statement]:
        """Every identity-policy statement once: inline ones, then each customer managed policy's."""
        inline = [s for role in self.roles.values() for s in role.statements if "/" in s.policy]
        return inline + [s for statements in self.managed_policies.values() for s in statements]


def expand(template: dict[str, Any] | None = None, parameters: dict[str, str] | None = None) -> Stack:
    source = copy.deepcopy(template if template is not None else load_template())
    for name, resource in source["Resources"].items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(properties.get(key), str):
                # Local paths are what `sam build`/`package` replace; the transform wants S3 locations.
                properties[key] = f"s3://{STACK}-artifacts/{name}"

    def no_managed_policy_lookups() -> dict[str, str]:
        raise RuntimeError("the template names every managed policy by ARN: no IAM lookup is needed")

    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=REGION))
    values = {**parameter_defaults(source), **(parameters or {})}
    expanded = translator.translate(source, dict(values), get_managed_policy_map=no_managed_policy_lookups)
    resolver = _Resolver(expanded, values)
    resolved = resolver.resolve(expanded)
    return _stack(resolved, resolver)


def _stack(template: dict[str, Any], resolver: _Resolver) -> Stack:
    resources = template["Resources"]
    managed = {
        name: _statements(name, spec["Properties"]["PolicyDocument"])
        for name, spec in resources.items()
        if spec["Type"] == "AWS::IAM::ManagedPolicy"
    }
    arn_to_managed = {resolver.ref(name): name for name in managed}
    roles: dict[str, Role] = {}
    for name, spec in resources.items():
        if spec["Type"] != "AWS::IAM::Role":
            continue
        role = Role(name, resolver.get_att(name, "Arn"))
        for policy in spec["Properties"].get("Policies", []):
            role.statements += _statements(f"{name}/{policy['PolicyName']}", policy["PolicyDocument"])
        for arn in spec["Properties"].get("ManagedPolicyArns", []):
            if arn in arn_to_managed:
                role.statements += managed[arn_to_managed[arn]]
            else:
                role.aws_managed_policies.append(arn)
        roles[name] = role
    role_by_arn = {role.arn: role.name for role in roles.values()}
    function_roles = {
        name: role_by_arn[spec["Properties"]["Role"]]
        for name, spec in resources.items()
        if spec["Type"] == "AWS::Lambda::Function"
    }
    return Stack(template, roles, managed, function_roles)


def _statements(policy: str, document: dict[str, Any]) -> list[Statement]:
    statements = document["Statement"]
    statements = [statements] if isinstance(statements, dict) else statements
    return [Statement(policy, index, statement) for index, statement in enumerate(statements)]


class _Resolver:
    """Ref, GetAtt, Sub, Join, If/conditions and AWS::NoValue, for the names below."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str]) -> None:
        self.resources = template["Resources"]
        self.parameters = parameters
        self.conditions = template.get("Conditions", {})
        self.pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::StackName": STACK,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
        }

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                resource, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.get_att(resource, attribute)
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self.resolve(items))
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name) else when_false)
        resolved = {}
        for key, item in value.items():
            if key == "Resources":  # resources whose Condition is false are not created
                item = {n: r for n, r in item.items() if "Condition" not in r or self.condition(r["Condition"])}
            result = self.resolve(item)
            if result is not NO_VALUE:
                resolved[key] = result
        return resolved

    def condition(self, name: str) -> bool:
        return self._truth(self.conditions[name])

    def _truth(self, expression: Any) -> bool:
        ((function, argument),) = expression.items()
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::Equals":
            left, right = (self.resolve(a) for a in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self._truth(argument[0])
        if function == "Fn::And":
            return all(self._truth(a) for a in argument)
        if function == "Fn::Or":
            return any(self._truth(a) for a in argument)
        raise ValueError(f"unsupported condition function {function}")

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self._physical(name)["Ref"]

    def get_att(self, name: str, attribute: str) -> str:
        return self._physical(name)[attribute]

    def _physical(self, name: str) -> dict[str, str]:
        spec = self.resources[name]
        kind = spec["Type"]
        properties = spec.get("Properties", {})
        physical = f"{STACK}-{name}"[:64]
        regional = f"{PARTITION}:%s:{REGION}:{ACCOUNT}"
        if kind == "AWS::IAM::Role":
            path = self.resolve(properties.get("Path", "/"))
            arn = f"arn:{PARTITION}:iam::{ACCOUNT}:role{path}{physical}"
            return {"Ref": physical, "Arn": arn, "RoleId": f"AROA{name.upper()[:16]}"}
        if kind == "AWS::IAM::ManagedPolicy":
            return {"Ref": f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{physical}"}
        if kind == "AWS::IAM::InstanceProfile":
            return {"Ref": physical, "Arn": f"arn:{PARTITION}:iam::{ACCOUNT}:instance-profile/{physical}"}
        if kind == "AWS::S3::Bucket":
            bucket = f"{STACK}-{name}-1a2b3c4d5e6f".lower()
            return {"Ref": bucket, "Arn": f"arn:{PARTITION}:s3:::{bucket}"}
        if kind == "AWS::DynamoDB::Table":
            return {"Ref": physical, "Arn": f"arn:{regional % 'dynamodb'}:table/{physical}"}
        if kind == "AWS::SNS::Topic":
            arn = f"arn:{regional % 'sns'}:{physical}"
            return {"Ref": arn, "TopicArn": arn, "TopicName": physical}
        if kind == "AWS::Lambda::Function":
            return {"Ref": physical, "Arn": f"arn:{regional % 'lambda'}:function:{physical}"}
        if kind == "AWS::Lambda::LayerVersion":
            return {"Ref": f"arn:{regional % 'lambda'}:layer:{physical}:1"}
        if kind == "AWS::StepFunctions::StateMachine":
            machine = self.resolve(properties.get("StateMachineName", physical))
            arn = f"arn:{regional % 'states'}:stateMachine:{machine}"
            return {"Ref": arn, "Arn": arn, "Name": machine}
        if kind == "AWS::Logs::LogGroup":
            group = self.resolve(properties.get("LogGroupName", physical))
            return {"Ref": group, "Arn": f"arn:{regional % 'logs'}:log-group:{group}:*"}
        return {"Ref": physical, "Arn": f"arn:{regional % 'cloudformation'}:{name}"}

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {key: self.resolve(value) for key, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!][^}]*)\}", replace, text)
