"""Print the state machine definition as Step Functions receives it: `${Name}` substitutions applied.

asl-validator (make asl) checks the ASL against the States Language schema, but it reads a definition, not
a SAM template: the DefinitionSubstitutions are filled here with ARNs of the form the deployed stack has
(account 123456789012), so its Resource ARN check sees real Lambda ARNs.

JitterStrategy stays in: asl-validator 4.0.0's Retry schema does not list it (nor MaxDelaySeconds) but
allows fields it does not list, so it passes unchecked; tests/unit/test_statemachine_structure.py checks
those retrier fields instead.
"""

from __future__ import annotations

import json
import re
import sys

from mirrorcap_tools.template import PROJECT_ROOT, load_template

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
STACK_NAME = "mirrorcap"


def arn_of(template: dict, value: object) -> str:
    """The ARN a `!GetAtt Resource.Arn` substitution has once deployed (only the kinds the template uses)."""
    assert isinstance(value, dict) and set(value) == {"Fn::GetAtt"}, f"not a GetAtt: {value!r}"
    resource, attribute = value["Fn::GetAtt"]
    kind = template["Resources"][resource]["Type"]
    if kind == "AWS::Serverless::Function" and attribute == "Arn":
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{STACK_NAME}-{resource}"
    raise SystemExit(f"render_definition.py: no sample ARN for {resource}.{attribute} ({kind}); add one")


def render() -> str:
    template = load_template()
    machine = template["Resources"]["CaptureStateMachine"]["Properties"]
    values = {name: arn_of(template, value) for name, value in machine["DefinitionSubstitutions"].items()}
    text = (PROJECT_ROOT / machine["DefinitionUri"]).read_text()
    missing = set(re.findall(r"\$\{(\w+)\}", text)) - set(values)
    if missing:
        raise SystemExit(f"render_definition.py: no DefinitionSubstitutions for {sorted(missing)}")
    rendered = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)
    return json.dumps(json.loads(rendered), indent=2)


if __name__ == "__main__":
    sys.stdout.write(render() + "\n")
