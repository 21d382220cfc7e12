"""The e2e run's code against the emulated account: the stack is the offline world's own deployment."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import boto3
import pytest


@dataclass
class EmulatedStacks:
    """StackProvider whose stack is the offline world (already deployed from template.yaml)."""

    world: object
    deletions: list[tuple[str, bool]] = field(default_factory=list)

    def claim(self, session: boto3.session.Session, stack_name: str) -> None:
        pass

    def deploy(self, session: boto3.session.Session, stack_name: str):
        from mirrorcap_tools.e2e import DeployedStack
        from mirrorcap_tools.offline.world import LOCK_TABLE

        functions = tuple(f["FunctionName"] for f in session.client("lambda").list_functions()["Functions"])
        return DeployedStack(
            name=stack_name,
            state_machine_arn=self.world.state_machine_arn,
            bucket=self.world.bucket,
            lock_table=LOCK_TABLE,
            sweeper_function="SweepOrphansFunction",  # offline, functions are named by their logical id
            function_names=functions,
        )

    def delete(self, session: boto3.session.Session, stack_name: str, *, keep_bucket: bool) -> str:
        self.deletions.append((stack_name, keep_bucket))
        return f"emulated stack {stack_name}: deletion recorded"


# The collector's volumes are looked at between polls while it exists: at this speedup it lives about
# half a real second (launch, readiness, a 60 s window, collection, teardown), many polls long.
E2E_SPEEDUP = 500.0


@pytest.fixture
def e2e_world() -> Iterator:
    """An emulated account with the stack deployed, whose collector delivers the committed sample
    capture (real HTTP requests and responses, see tools/mirrorcap_tools/offline/data/sample-capture.md)."""
    from mirrorcap_tools.emulation import OfflineAws
    from mirrorcap_tools.offline.collector import SampleCaptureCollector
    from mirrorcap_tools.offline.world import build_world

    with OfflineAws(SampleCaptureCollector(), speedup=E2E_SPEEDUP) as aws:
        yield build_world(aws)


@pytest.fixture
def fast_pacing():
    from mirrorcap_tools.e2e import Pacing

    return Pacing(poll_seconds=0.05, instance_timeout_seconds=30, execution_timeout_seconds=90, sweep_rounds=50)


@pytest.fixture
def stacks(e2e_world) -> EmulatedStacks:
    return EmulatedStacks(e2e_world)
