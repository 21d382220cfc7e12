"""Write template.yaml as CloudFormation receives it: the SAM transform applied, offline.

cfn-lint skips its IAM action check (W3037) on any template that declares the SAM transform (its source:
"Escape validation when using SAM transforms", aws/serverless-application-model#3633), so `make cfnlint`
lints this expansion instead of template.yaml; a misspelled action in a function's Policies is caught here.
The expansion is cfn-lint's own (aws-sam-translator with local CodeUri/DefinitionUri replaced by S3
placeholders, managed policy ARNs from its bundled list), so no AWS credentials or network are needed.

Usage: .venv-cfnlint/bin/python tools/cfnlint/expand_template.py TEMPLATE OUT.json
"""

from __future__ import annotations

import json
import sys

from cfnlint.decode import decode
from cfnlint.template import Template


def expand(path: str) -> dict:
    template, problems = decode(path)
    if problems or template is None:
        raise SystemExit("\n".join(str(p) for p in problems) or f"{path}: not a template")
    cfn = Template(path, template, regions=["us-east-1"])
    problems = cfn.transform()
    if problems:
        raise SystemExit("SAM transform failed:\n" + "\n".join(str(p) for p in problems))
    assert not cfn.has_serverless_transform() or "Transform" not in cfn.template, "still a SAM template"
    return cfn.template


if __name__ == "__main__":
    source, out = sys.argv[1:3]
    with open(out, "w") as handle:
        json.dump(expand(source), handle, indent=1, default=str)
