"""The emulated account served over real HTTP, with the stack registered in CloudFormation, and the
`mirrorcap` command line run against it as a separate process (as an operator's laptop would).

moto's server dispatches to the same in-process backends that `mock_aws` holds, so the CLI's HTTP calls
see the world the workflow is running in (the tests start captures over HTTP and see them run). Its Date
header is the emulated clock's: capture windows are in that time, and `watch` measures on AWS's Date.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any

import pytest

OPERATOR_SPEEDUP = 200.0


@dataclass
class ServedWorld:
    world: Any
    endpoint_url: str
    stack_name: str

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment of an operator whose AWS CLI points at the served account."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MIRRORCAP_"))}
        env.update(
            AWS_ENDPOINT_URL=self.endpoint_url,
            AWS_ACCESS_KEY_ID="operator",
            AWS_SECRET_ACCESS_KEY="operator",
            AWS_REGION=self.world.aws.region,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            MIRRORCAP_STACK=self.stack_name,
            COLUMNS="160",
        )
        env.update(overrides)
        return {k: v for k, v in env.items() if v != ""}

    def run(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mirrorcap_tools.cli", *args],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def executions(self) -> list[dict]:
        sfn = self.world.client("stepfunctions")
        return sfn.list_executions(stateMachineArn=self.world.state_machine_arn)["executions"]


def serve(world: Any) -> Iterator[str]:
    """moto's server app (what ThreadedMotoServer runs) on 127.0.0.1, inside the world's mock context."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    clock = world.aws.clock

    class VirtualDateHandler(MotoRequestHandler):
        """Every answer's Date header (http.server adds it to each response) in the emulated clock's time."""

        def date_time_string(self, timestamp: float | None = None) -> str:
            if timestamp is not None:
                return super().date_time_string(timestamp)
            return format_datetime(clock.now(), usegmt=True)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=VirtualDateHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()


def register_stack(world: Any, name: str) -> None:
    """The outputs `sam deploy` would leave in CloudFormation, pointing at the world's deployment."""
    from mirrorcap_tools.offline.world import STACK_NAME

    template = {
        "Resources": {
            "Marker": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": f"/{name}/deployed-from", "Type": "String", "Value": STACK_NAME},
            }
        },
        "Outputs": {
            "StateMachineArn": {"Value": world.state_machine_arn},
            "CaptureBucketName": {"Value": world.bucket},
            "StateMachineConsole": {"Value": f"https://console.example/{STACK_NAME}"},
        },
    }
    world.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


def served_world(speedup: float, **options: Any) -> Iterator[ServedWorld]:
    from mirrorcap_tools.emulation import OfflineAws
    from mirrorcap_tools.offline.collector import SampleCaptureCollector
    from mirrorcap_tools.offline.faults import FaultPlan
    from mirrorcap_tools.offline.runner import instrument_functions
    from mirrorcap_tools.offline.world import build_world

    # The committed sample: real HTTP requests and responses, so the headline has numbers to show.
    with OfflineAws(SampleCaptureCollector(), speedup=speedup, **options) as aws:
        world = build_world(aws)
        instrument_functions(world, FaultPlan())
        register_stack(world, "mirrorcap-operator")
        for endpoint in serve(world):
            yield ServedWorld(world, endpoint, "mirrorcap-operator")


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[ServedWorld]:
    """Parametrize indirectly with a speedup for a slower world (the default runs a 60 s window in 0.3 s)."""
    yield from served_world(getattr(request, "param", OPERATOR_SPEEDUP))
