"""`make e2e`: the opt-in test against a real AWS account (never in CI; see docs/e2e.md).

It deploys the stack, launches a throwaway source instance that makes plain-HTTP requests, runs a
60-second manual capture of it, checks what the capture delivered and that nothing was left behind,
checks the first-deploy risks a real account exposes (the collector's instance credentials, the AMI
owner condition on RunInstances, the encrypted collector volume), deletes everything it made (also
when a step fails) and prints what it did and roughly what it cost.

Every AWS call goes through a boto3 Session the caller passes in, and the deploy is a replaceable
object (`StackProvider`), so tests/e2e runs this very code against the emulated account.
"""

from mirrorcap_tools.e2e.flow import E2eOptions, E2eReport, run_e2e
from mirrorcap_tools.e2e.pacing import REAL_PACING, Pacing
from mirrorcap_tools.e2e.stack import DeployedStack, SamStacks, StackProvider

__all__ = [
    "REAL_PACING",
    "DeployedStack",
    "E2eOptions",
    "E2eReport",
    "Pacing",
    "SamStacks",
    "StackProvider",
    "run_e2e",
]
