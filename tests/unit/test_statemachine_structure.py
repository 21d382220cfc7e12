"""The ASL checked structurally: `sam validate --lint` does not look inside the state machine definition."""

from __future__ import annotations

import inspect
import json
import re

import mirrorcap.errors
import pytest
from mirrorcap_tools.template import PROJECT_ROOT, load_template

TEMPLATE = load_template()
STATE_MACHINE = TEMPLATE["Resources"]["CaptureStateMachine"]["Properties"]
DEFINITION_TEXT = (PROJECT_ROOT / STATE_MACHINE["DefinitionUri"]).read_text()
ASL = json.loads(DEFINITION_TEXT)
STATES = ASL["States"]

DOMAIN_ERRORS = {
    name for name, cls in inspect.getmembers(mirrorcap.errors, inspect.isclass) if issubclass(cls, Exception)
}
# Errors the Lambda service raises for an invocation (not the function's own), as Step Functions names them.
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}  # fmt: skip
STATES_ERRORS = {
    "States.ALL", "States.Timeout", "States.TaskFailed", "States.Permissions", "States.Runtime",
    "States.HeartbeatTimeout", "States.DataLimitExceeded", "States.ResultPathMatchFailure",
    "States.ParameterPathFailure", "States.BranchFailed", "States.NoChoiceMatched", "States.IntrinsicFailure",
    "States.ExceedToleratedFailureThreshold", "States.ItemReaderFailed", "States.ResultWriterFailed",
    "States.QueryEvaluationError",
}  # fmt: skip


def _targets(state: dict) -> list[str]:
    targets = [state[key] for key in ("Next", "Default") if key in state]
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    targets += [catch["Next"] for catch in state.get("Catch", [])]
    return targets


def test_start_state_exists() -> None:
    assert ASL["StartAt"] in STATES


@pytest.mark.parametrize("name", sorted(STATES))
def test_every_transition_names_a_state(name: str) -> None:
    for target in _targets(STATES[name]):
        assert target in STATES, f"{name} -> {target}"


@pytest.mark.parametrize("name", sorted(STATES))
def test_every_state_ends_or_moves_on(name: str) -> None:
    state = STATES[name]
    terminal = state["Type"] in ("Succeed", "Fail") or state.get("End") is True
    assert terminal or _targets(state), name


def test_every_state_is_reachable() -> None:
    seen, todo = set(), [ASL["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _targets(STATES[name])
    assert seen == set(STATES), set(STATES) - seen


def test_every_substitution_is_defined_in_the_template_and_used() -> None:
    used = set(re.findall(r"\$\{([^}]+)\}", DEFINITION_TEXT))
    defined = set(STATE_MACHINE["DefinitionSubstitutions"])
    assert used == defined


@pytest.mark.parametrize("name", sorted(STATES))
def test_every_error_name_is_real(name: str) -> None:
    state = STATES[name]
    for rule in state.get("Retry", []) + state.get("Catch", []):
        for error in rule["ErrorEquals"]:
            assert error in DOMAIN_ERRORS | LAMBDA_SERVICE_ERRORS | STATES_ERRORS, f"{name}: unknown error {error}"
        if "States.ALL" in rule["ErrorEquals"]:
            assert rule["ErrorEquals"] == ["States.ALL"], f"{name}: States.ALL must stand alone"
    retriers = state.get("Retry", [])
    assert all("States.ALL" not in r["ErrorEquals"] for r in retriers[:-1]), f"{name}: States.ALL retrier must be last"


def _reachable_from(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        state = STATES[current]
        todo += [state[key] for key in ("Next", "Default") if key in state]
        todo += [choice["Next"] for choice in state.get("Choices", [])]
    return seen


def test_every_task_after_the_first_resource_catches_everything_into_teardown() -> None:
    teardown_path = _reachable_from("PrepareTeardown")
    after_launch = _reachable_from("LaunchCollector") - teardown_path
    tasks = [name for name in after_launch if STATES[name]["Type"] == "Task"]
    assert "LaunchCollector" in tasks and "CollectCapture" in tasks
    for name in tasks:
        catches = STATES[name].get("Catch", [])
        assert any(c["ErrorEquals"] == ["States.ALL"] and c["Next"] == "PrepareTeardown" for c in catches), name
        assert any(c.get("ResultPath") == "$.error" for c in catches), name


def test_failure_after_teardown_reports_the_original_error() -> None:
    fail = STATES["CaptureFailed"]
    assert (fail["ErrorPath"], fail["CausePath"]) == ("$.error.Error", "$.error.Cause")


def test_readiness_is_a_bounded_poll_before_the_session() -> None:
    assert STATES["LaunchCollector"]["Next"] == "WaitForCollectorBoot"
    assert STATES["IsCollectorReady"]["Choices"][0]["Next"] == "CreateMirrorSession"
    assert STATES["WaitBeforeNextReadinessCheck"]["Seconds"] >= 10  # no tight loop: each poll is billed
    # The bound is CheckCollectorReady raising CollectorNotReady past READINESS_TIMEOUT_SECONDS.
    assert STATES["CheckCollectorReady"]["Catch"][0]["Next"] == "PrepareTeardown"


def test_teardown_retries_but_not_when_it_gave_up() -> None:
    retriers = STATES["TeardownCapture"]["Retry"]
    assert retriers[0] == {"ErrorEquals": ["TeardownIncomplete"], "MaxAttempts": 0}
    assert retriers[-1]["ErrorEquals"] == ["States.ALL"] and retriers[-1]["MaxAttempts"] >= 3


def test_tasks_have_timeouts() -> None:
    for name, state in STATES.items():
        if state["Type"] == "Task":
            assert 0 < state["TimeoutSeconds"] <= 900, name
