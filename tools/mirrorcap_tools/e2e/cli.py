"""`python -m mirrorcap_tools.e2e --subnet-id subnet-... [--region R] [--profile P]` (what `make e2e` runs).

Exit status: 0 when every check passed and everything was deleted, 1 when not, 2 when it refused to
start (no subnet, no credentials, no region, a subnet or stack that is not what it should be).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from mirrorcap_tools.e2e.flow import E2eOptions, new_stack_name, run_e2e
from mirrorcap_tools.e2e.pacing import REAL_PACING
from mirrorcap_tools.e2e.source import subnet_vpc
from mirrorcap_tools.e2e.stack import RefusedToRun, SamStacks, aws_client, refuse_foreign_stack

EXIT_PASSED, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="make e2e",
        description="Deploy mirrorcap into a real AWS account, capture a throwaway instance for 60 s, check "
        "the results, delete everything. Costs a few cents; see docs/e2e.md.",
    )
    parser.add_argument("--subnet-id", default="", help="sandbox subnet that reaches SSM and S3 (required)")
    parser.add_argument("--region", default=None, help="default: the profile's or AWS_REGION")
    parser.add_argument("--profile", default=None, help="default: AWS_PROFILE or the default credential chain")
    parser.add_argument("--stack-name", default=None, help="default: mirrorcap-e2e-<random>")
    parser.add_argument("--keep-stack", action="store_true", help="leave the stack deployed (for another run)")
    parser.add_argument(
        "--delete-captures", action="store_true", help="also delete the capture's objects (default: kept)"
    )
    parser.add_argument("--source-instance-type", default="t3.micro", help="a type mirroring supports as source")
    parser.add_argument("--sam", default="sam", help="the SAM CLI to deploy with (make e2e: the pinned one)")
    parser.add_argument(
        "--preflight", action="store_true", help="only check the credentials, region and subnet, then stop"
    )
    return parser


def preflight(args: argparse.Namespace) -> tuple[boto3.session.Session, str]:
    """The session to run with and a line saying where: or RefusedToRun with what to fix."""
    if not args.subnet_id:
        raise RefusedToRun(
            "no subnet: make e2e SUBNET_ID=subnet-... (a sandbox subnet whose instances reach SSM and S3, "
            "through a NAT gateway or VPC endpoints; see docs/e2e.md)"
        )
    try:
        session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
    except ProfileNotFound as exc:
        raise RefusedToRun(f"{exc}: check --profile / AWS_PROFILE") from None
    if not session.region_name:
        raise RefusedToRun("no region: make e2e ... AWS_REGION=eu-west-1 (or set one in the profile)")
    if session.get_credentials() is None:
        raise RefusedToRun(
            "no AWS credentials: make e2e needs credentials that can deploy the stack (CloudFormation, IAM "
            "roles, Lambda, Step Functions, S3, DynamoDB, SNS, EC2): set AWS_PROFILE, or run aws sso login / "
            "aws configure"
        )
    try:
        identity = aws_client(session, "sts").get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        raise RefusedToRun(f"the credentials do not work: {exc}") from None
    vpc_id = subnet_vpc(session, args.subnet_id)
    if args.stack_name:
        refuse_foreign_stack(session, args.stack_name)
    return session, (
        f"account {identity['Account']} as {identity['Arn']}, region {session.region_name}, "
        f"subnet {args.subnet_id} in {vpc_id}"
    )


def main(argv: list[str] | None = None, out: Callable[[str], None] | None = None) -> int:
    log = out or (lambda line: print(line, flush=True))
    args = build_parser().parse_args(argv)
    try:
        session, where = preflight(args)
    except RefusedToRun as refused:
        print(f"make e2e: refused: {refused}", file=sys.stderr)
        return EXIT_REFUSED
    log(f"make e2e: {where}")
    if args.preflight:
        return EXIT_PASSED
    options = E2eOptions(
        subnet_id=args.subnet_id,
        stack_name=args.stack_name or new_stack_name(),
        keep_stack=args.keep_stack,
        delete_captures=args.delete_captures,
        source_instance_type=args.source_instance_type,
    )
    stacks = SamStacks(sam=args.sam, region=session.region_name, profile=args.profile, log=log)
    report = run_e2e(session, options, stacks, REAL_PACING, log=log)
    log("")
    log(report.text())
    return EXIT_PASSED if report.passed else EXIT_FAILED
