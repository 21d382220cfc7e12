"""The ASL checked structurally: `sam validate --lint` does not look inside the state machine definition."""

from __future__ import annotations

import datetime
import inspect
import json
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import mirrorcap.errors
import pytest
from mirrorcap_tools.offline.world import load_handler
from mirrorcap_tools.template import PROJECT_ROOT, load_template
from pydantic import BaseModel

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


# --- Every path a Choice reads is there ------------------------------------------------------------------
# On AWS a Choice rule whose Variable is absent from the state's input fails the execution with
# States.Runtime, which no Catch (not even States.ALL) catches, so nothing is torn down; moto's interpreter
# takes the Default branch instead, so no offline run can show it.
# https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html (States.ALL, States.Runtime)
# https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html (IsPresent)
#
# So the check follows the data instead: it walks the graph from StartAt, carrying what is known about the
# state's input (which fields are always there, which may be absent, which are known absent), through each
# Task's ResultPath (the function's output model), Pass Result/Parameters, ResultSelector, InputPath and
# OutputPath and Catch ResultPaths, and through each Choice branch (a rule's Next learns what the rule
# tested; falling past an `IsPresent` rule learns the opposite). A state reached along several paths is
# checked once per distinct input, so a guard on one path does not excuse another.

ALWAYS, MAYBE, ABSENT = "always", "maybe", "absent"


@dataclass(frozen=True)
class Shape:
    """What is known about a JSON value: its fields (each always there, maybe there, or known absent) and
    whether it can have fields besides those (`closed=False`: anything not listed may be there)."""

    fields: tuple[tuple[str, str, Shape], ...] = ()
    closed: bool = False

    def field(self, name: str) -> tuple[str, Shape]:
        for field_name, presence, shape in self.fields:
            if field_name == name:
                return presence, shape
        return (ABSENT if self.closed else MAYBE), ANYTHING

    def with_field(self, name: str, presence: str, shape: Shape) -> Shape:
        others = tuple(f for f in self.fields if f[0] != name)
        return Shape(tuple(sorted((*others, (name, presence, shape)), key=lambda f: f[0])), self.closed)


ANYTHING = Shape()  # any JSON value (a dict, list or scalar the check does not look into)
SCALAR = Shape(closed=True)  # a string, number or boolean: no fields


def _steps(path: str) -> list[str]:
    """`$.a.b` -> ["a", "b"]. Only the dotted form: anything else fails the test so it gets looked at."""
    assert re.fullmatch(r"\$(\.[A-Za-z_][A-Za-z0-9_]*)*", path), f"path form the check does not read: {path}"
    return path.split(".")[1:]


def presence(shape: Shape, path: str) -> str:
    result = ALWAYS
    for step in _steps(path):
        field_presence, shape = shape.field(step)
        if field_presence == ABSENT:
            return ABSENT
        if field_presence == MAYBE:
            result = MAYBE
    return result


def lookup(shape: Shape, path: str) -> Shape:
    for step in _steps(path):
        shape = shape.field(step)[1]
    return shape


def put(shape: Shape, steps: list[str], value: Shape) -> Shape:
    """The value at `steps` replaced (ResultPath): fields on the way are there afterwards."""
    if not steps:
        return value
    _, inner = shape.field(steps[0])
    return shape.with_field(steps[0], ALWAYS, put(inner, steps[1:], value))


def refine(shape: Shape | None, path: str, present: bool) -> Shape | None:
    """What a Choice branch learns: `path` is there (or is not); None when this input cannot take that
    branch. Absence is only recorded where the parent is known to be there; otherwise "the parent or the
    field is absent" cannot be written down, and knowing less is safe."""
    if shape is None or presence(shape, path) == (ABSENT if present else ALWAYS):
        return None
    steps = _steps(path)
    if present:
        return _mark_present(shape, steps)
    parent = "$" + "".join(f".{s}" for s in steps[:-1])
    if not steps or presence(shape, parent) != ALWAYS:
        return shape
    return _mark_absent(shape, steps)


def _mark_present(shape: Shape, steps: list[str]) -> Shape:
    if not steps:
        return shape
    _, inner = shape.field(steps[0])
    return shape.with_field(steps[0], ALWAYS, _mark_present(inner, steps[1:]))


def _mark_absent(shape: Shape, steps: list[str]) -> Shape:
    field_presence, inner = shape.field(steps[0])
    if len(steps) == 1:
        return shape.with_field(steps[0], ABSENT, ANYTHING)
    return shape.with_field(steps[0], field_presence, _mark_absent(inner, steps[1:]))


# --- Shapes of what functions return and what states build ---


def shape_of_model(model: type[BaseModel], depth: int = 0) -> Shape:
    """The JSON a workflow handler returns for this model: `model_dump(mode="json", exclude_none=True)`.

    A field is always there only if it is required and cannot be None: exclude_none drops a None, and a
    default is not something the ASL should lean on (a later `exclude_defaults`/`exclude_unset` would drop
    it silently). Extra fields are dropped unless the model allows them."""
    if depth > 8:
        return ANYTHING
    fields = []
    for name, info in model.model_fields.items():
        nullable, shape = _shape_of_annotation(info.annotation, depth + 1)
        always = info.is_required() and not nullable
        fields.append((name, ALWAYS if always else MAYBE, shape))
    return Shape(tuple(sorted(fields, key=lambda f: f[0])), closed=model.model_config.get("extra") != "allow")


def _shape_of_annotation(annotation: Any, depth: int) -> tuple[bool, Shape]:
    """(can it be None, its shape)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _shape_of_annotation(typing.get_args(annotation)[0], depth)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(members) < len(typing.get_args(annotation))
        if len(members) == 1:
            inner_nullable, shape = _shape_of_annotation(members[0], depth)
            return nullable or inner_nullable, shape
        return nullable, ANYTHING  # a union of several shapes: nothing is known about its fields
    if annotation is None or annotation is type(None) or annotation is Any:
        return True, ANYTHING
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return False, shape_of_model(annotation, depth)
    if isinstance(annotation, type) and issubclass(annotation, (str, int, float, bool, datetime.date)):
        return False, SCALAR
    if typing.get_origin(annotation) is typing.Literal:
        return None in typing.get_args(annotation), SCALAR
    return False, ANYTHING  # lists, dicts: the check does not look inside them


def shape_of_json(value: Any) -> Shape:
    if isinstance(value, dict):
        fields = tuple(sorted(((k, ALWAYS, shape_of_json(v)) for k, v in value.items()), key=lambda f: f[0]))
        return Shape(fields, closed=True)
    return SCALAR if not isinstance(value, list) else ANYTHING


# Where AWS puts an error a Catch caught. Cause is there even when empty: a States.Timeout's error output
# is {"Error": "States.Timeout", "Cause": ""} (an execution history quoted in
# https://github.com/aws-samples/serverless-coffee-workshop/issues/15).
ERROR_OUTPUT = Shape((("Cause", ALWAYS, SCALAR), ("Error", ALWAYS, SCALAR)), closed=True)
INTRINSIC_PATH_ARGUMENT = re.compile(r"(?<![$\w])\$(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def paths_in(reference: str) -> list[str]:
    """The input paths a reference path or an intrinsic function (`States.JsonToString($.x)`) reads."""
    if reference.startswith("$$"):
        return []  # the context object, always there
    if reference.startswith("States."):
        return INTRINSIC_PATH_ARGUMENT.findall(reference)
    return [reference]


# (where in the state, the path read, its presence in the data it is read from)
Reads = list[tuple[str, str, str]]


def shape_of_template(template: Any, data: Shape, reads: Reads, where: str) -> Shape:
    """What a Parameters / ResultSelector template builds from `data`; each `.$` path it reads is noted."""
    if isinstance(template, list):
        return ANYTHING
    if not isinstance(template, dict):
        return SCALAR
    fields = []
    for key, value in template.items():
        if key.endswith(".$"):
            read = paths_in(value)
            reads += [(where, path, presence(data, path)) for path in read]
            built = lookup(data, value) if read == [value] else (SCALAR if read else ANYTHING)
            # If the path is missing the state fails (and that read is reported): past it, the field is there.
            fields.append((key[:-2], ALWAYS, built))
        else:
            fields.append((key, ALWAYS, shape_of_template(value, data, reads, where) if isinstance(value, dict)
                           else shape_of_json(value)))  # fmt: skip
    return Shape(tuple(sorted(fields, key=lambda f: f[0])), closed=True)


def with_result(state: dict, data: Shape, result: Shape) -> Shape:
    result_path = state.get("ResultPath", "$")
    if result_path is None:
        return data  # "ResultPath": null keeps the input, discards the result
    return put(data, _steps(result_path), result)


# --- Choice rules ---


def rule_problems(rule: dict, data: Shape | None) -> list[str]:
    """Paths this rule reads that may be absent (IsPresent itself never fails)."""
    if data is None:
        return []  # no input that gets this far
    if "And" in rule:
        problems, guarded = [], data
        # Guards count only before what they guard: AWS evaluates the list in order.
        for inner in rule["And"]:
            problems += rule_problems(inner, guarded)
            guarded = after_match(inner, guarded)
        return problems
    if "Or" in rule:
        return [p for inner in rule["Or"] for p in rule_problems(inner, data)]
    if "Not" in rule:
        return rule_problems(rule["Not"], data)
    if "IsPresent" in rule:
        return []
    read = [rule["Variable"]] + [v for k, v in rule.items() if k.endswith("Path") and isinstance(v, str)]
    return [f"{path} ({presence(data, path)})" for path in read if presence(data, path) != ALWAYS]


def after_match(rule: dict, data: Shape | None) -> Shape | None:
    """What is known once `rule` matched (None: it cannot match this input)."""
    if "And" in rule:
        for inner in rule["And"]:
            data = after_match(inner, data)
        return data
    if "Or" in rule or "Not" in rule:
        return data
    if "IsPresent" in rule:
        return refine(data, rule["Variable"], present=rule["IsPresent"])
    return refine(data, rule["Variable"], present=True)  # a comparison matched: the field was there


def after_no_match(rule: dict, data: Shape | None) -> Shape | None:
    """What is known once `rule` did not match: only a bare IsPresent says something."""
    if set(rule) >= {"Variable", "IsPresent"} and len(rule) == 3:
        return refine(data, rule["Variable"], present=not rule["IsPresent"])
    return data


# --- The walk ---


@dataclass
class DataFlow:
    choice_problems: set[str] = field(default_factory=set)
    read_problems: set[str] = field(default_factory=set)
    inputs_seen: dict[str, set[Shape]] = field(default_factory=dict)


def task_result(state: dict, asl_name: str) -> Shape:
    """A Lambda Task's result: the output model of the function its Resource names."""
    substitution = re.fullmatch(r"\$\{(\w+)\}", state["Resource"])
    assert substitution, f"{asl_name}: Resource is not a ${{Substitution}}: the check cannot find its function"
    resource = STATE_MACHINE["DefinitionSubstitutions"][substitution.group(1)]["Fn::GetAtt"][0]
    return shape_of_model(output_model_of(TEMPLATE["Resources"][resource]["Properties"]["CodeUri"]))


_OUTPUT_MODELS: dict[str, type[BaseModel]] = {}


def output_model_of(code_uri: str) -> type[BaseModel]:
    if code_uri not in _OUTPUT_MODELS:
        _OUTPUT_MODELS[code_uri] = load_handler(code_uri).output_model
    return _OUTPUT_MODELS[code_uri]


def analyse(states: dict, start: str, start_input: Shape = ANYTHING, flow: DataFlow | None = None) -> DataFlow:
    flow = flow or DataFlow()
    todo = [(start, start_input)]
    while todo:
        name, data = todo.pop()
        seen = flow.inputs_seen.setdefault(name, set())
        if data in seen:
            continue
        seen.add(data)
        assert len(seen) < 100, f"{name}: the data reaching it keeps growing (a loop that nests its input?)"
        todo += [(target, shape) for target, shape in transitions(name, states[name], data, flow)]
    return flow


def transitions(name: str, state: dict, raw_input: Shape, flow: DataFlow) -> list[tuple[str, Shape]]:
    """(next state, its input) for every way out of `state` given this input; records what it reads."""
    reads: Reads = []
    kind = state["Type"]
    reads += (
        [("InputPath", state["InputPath"], presence(raw_input, state["InputPath"]))] if state.get("InputPath") else []
    )
    data = lookup(raw_input, state["InputPath"]) if state.get("InputPath") else raw_input
    for key in ("SecondsPath", "TimestampPath", "ErrorPath", "CausePath", "ItemsPath"):
        reads += [(key, path, presence(data, path)) for path in paths_in(state.get(key, "$$"))]
    out: list[tuple[str, Shape]] = []

    if kind == "Choice":
        remaining: Shape | None = data
        for index, rule in enumerate(state["Choices"]):
            for problem in rule_problems(rule, remaining):
                flow.choice_problems.add(f"{name}: Choices[{index}] reads {problem}")
            matched = after_match(rule, remaining)
            out += [(rule["Next"], matched)] if matched is not None else []
            remaining = after_no_match(rule, remaining)
        if "Default" in state and remaining is not None:
            out.append((state["Default"], remaining))
    elif kind in ("Task", "Pass", "Parallel", "Map"):
        effective = shape_of_template(state["Parameters"], data, reads, "Parameters") if "Parameters" in state else data
        if kind == "Task":
            result = task_result(state, name)
        elif kind == "Pass":
            result = shape_of_json(state["Result"]) if "Result" in state else effective
        else:
            for branch in state.get("Branches", []) + [state[k] for k in ("ItemProcessor", "Iterator") if k in state]:
                # Map items and Parallel branch results are lists the check does not look into.
                analyse(branch["States"], branch["StartAt"], effective if kind == "Parallel" else ANYTHING, flow)
            result = ANYTHING
        if "ResultSelector" in state:
            result = shape_of_template(state["ResultSelector"], result, reads, "ResultSelector")
        output = with_result(state, raw_input, result)  # ResultPath places the result into the raw input
        if state.get("OutputPath"):
            reads.append(("OutputPath", state["OutputPath"], presence(output, state["OutputPath"])))
            output = lookup(output, state["OutputPath"])
        out += [(state["Next"], output)] if "Next" in state else []
        for catch in state.get("Catch", []):
            out.append((catch["Next"], with_result(catch, raw_input, ERROR_OUTPUT)))
    elif kind == "Wait":
        out.append((state["Next"], raw_input))

    flow.read_problems.update(
        f"{name}: {where} reads {path} ({found})" for where, path, found in reads if found != ALWAYS
    )
    return out


def test_every_choice_reads_only_fields_that_are_always_there() -> None:
    flow = analyse(STATES, ASL["StartAt"])
    assert set(flow.inputs_seen) == set(STATES), set(STATES) - set(flow.inputs_seen)
    assert not flow.choice_problems, "\n".join(sorted(flow.choice_problems))


def test_every_other_path_a_state_reads_is_always_there() -> None:
    """Reads outside Choice rules (Parameters, SecondsPath, CausePath...) fail the same way on AWS
    (States.Runtime) when their path is absent."""
    flow = analyse(STATES, ASL["StartAt"])
    assert not flow.read_problems, "\n".join(sorted(flow.read_problems))


# --- The check on doctored copies of the ASL: it can fail, and names the state and the path ---


def _doctored(**replaced_states: dict) -> dict:
    states = json.loads(json.dumps(STATES))
    states.update(replaced_states)
    return states


def _choice_problems(states: dict) -> set[str]:
    return analyse(states, ASL["StartAt"]).choice_problems


def test_the_check_passes_the_real_definition_with_every_state_visited() -> None:
    flow = analyse(STATES, ASL["StartAt"])
    assert set(flow.inputs_seen) == set(STATES)


def test_a_choice_on_an_optional_output_field_is_named() -> None:
    # Readiness.ping_status is `str | None`: the handler drops it when None.
    states = _doctored(IsCollectorReady={
        "Type": "Choice",
        "Choices": [{"Variable": "$.readiness.ping_status", "StringEquals": "Online", "Next": "CreateMirrorSession"}],
        "Default": "WaitBeforeNextReadinessCheck",
    })  # fmt: skip
    assert _choice_problems(states) == {"IsCollectorReady: Choices[0] reads $.readiness.ping_status (maybe)"}


def test_an_and_guard_with_is_present_first_is_enough_but_not_after() -> None:
    guarded = [{"Variable": "$.readiness.ping_status", "IsPresent": True},
               {"Variable": "$.readiness.ping_status", "StringEquals": "Online"}]  # fmt: skip
    for order, expected in ((guarded, set()), (guarded[::-1], {"IsCollectorReady: Choices[0] reads $.readiness.ping_status (maybe)"})):  # fmt: skip
        states = _doctored(IsCollectorReady={
            "Type": "Choice", "Choices": [{"And": order, "Next": "CreateMirrorSession"}],
            "Default": "WaitBeforeNextReadinessCheck",
        })  # fmt: skip
        assert _choice_problems(states) == expected


def test_a_guard_must_hold_on_every_path_into_the_choice() -> None:
    # Without DidCaptureFail's IsPresent, the success path reaches WhichFailure with no $.error at all.
    states = _doctored(DidCaptureFail={"Type": "Choice", "Choices": [
        {"Variable": "$.teardown.complete", "BooleanEquals": True, "Next": "WhichFailure"}], "Default": "ReportCapture"})  # fmt: skip
    assert "WhichFailure: Choices[0] reads $.error.Error (absent)" in _choice_problems(states)


def test_a_result_path_that_moves_the_field_away_is_caught() -> None:
    # StartCapture's result lands elsewhere, so RenewGrantOrCollect's $.command is never written.
    states = _doctored(StartCapture={**STATES["StartCapture"], "ResultPath": "$.started"})
    assert _choice_problems(states) == {"RenewGrantOrCollect: Choices[0] reads $.command.renew_grant (absent)"}


def test_a_pass_state_builds_what_a_choice_reads() -> None:
    # A Pass that copies a required field makes it readable; one that copies only an optional field's
    # parent does not make the field itself required.
    summarise = {"Type": "Pass", "Parameters": {"ready.$": "$.readiness.ready", "copied.$": "$.readiness"},
                 "ResultPath": "$.summary", "Next": "IsCollectorReady"}  # fmt: skip
    check = {"Type": "Choice", "Default": "WaitBeforeNextReadinessCheck", "Choices": [
        {"Variable": "$.summary.ready", "BooleanEquals": True, "Next": "CreateMirrorSession"},
        {"Variable": "$.summary.copied.ping_status", "StringEquals": "Online", "Next": "CreateMirrorSession"}]}  # fmt: skip
    states = _doctored(
        CheckCollectorReady={**STATES["CheckCollectorReady"], "Next": "Summarise"},
        Summarise=summarise,
        IsCollectorReady=check,
    )
    assert _choice_problems(states) == {"IsCollectorReady: Choices[1] reads $.summary.copied.ping_status (maybe)"}


def test_a_catch_result_path_carries_error_and_cause() -> None:
    states = _doctored(LaunchCollector={**STATES["LaunchCollector"], "Next": "IsLaunchFine"}, IsLaunchFine={
        "Type": "Choice", "Default": "WaitForCollectorBoot",
        "Choices": [{"Variable": "$.error.Cause", "StringEquals": "", "Next": "PrepareTeardown"}]})  # fmt: skip
    # Reached only on success: there $.error was never written.
    assert _choice_problems(states) == {"IsLaunchFine: Choices[0] reads $.error.Cause (absent)"}


def test_choices_inside_parallel_branches_are_checked_too() -> None:
    branch = {"StartAt": "Inner", "States": {
        "Inner": {"Type": "Choice", "Default": "Done",
                  "Choices": [{"Variable": "$.collector.missing", "IsNull": False, "Next": "Done"}]},
        "Done": {"Type": "Succeed"}}}  # fmt: skip
    states = _doctored(WaitForCollectorBoot={"Type": "Parallel", "Branches": [branch], "ResultPath": None,
                                             "Next": "CheckCollectorReady"})  # fmt: skip
    assert _choice_problems(states) == {"Inner: Choices[0] reads $.collector.missing (absent)"}


# asl-validator (make asl) does not check retrier fields beyond ErrorEquals, IntervalSeconds, MaxAttempts and
# BackoffRate: its schema lets any other field through, so a misspelled JitterStrategy would reach AWS.
# Fields and values: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
# (Retrying after an error) and AWS's own enum, https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_stepfunctions.JitterType.html
RETRIER_FIELDS = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds", "JitterStrategy"}


@pytest.mark.parametrize("name", sorted(n for n, s in STATES.items() if "Retry" in s))
def test_retriers_use_only_fields_and_values_aws_knows(name: str) -> None:
    for retrier in STATES[name]["Retry"]:
        assert set(retrier) <= RETRIER_FIELDS, f"{name}: {set(retrier) - RETRIER_FIELDS}"
        assert retrier.get("JitterStrategy", "NONE") in ("FULL", "NONE"), name
        assert retrier.get("BackoffRate", 2.0) >= 1.0, name
