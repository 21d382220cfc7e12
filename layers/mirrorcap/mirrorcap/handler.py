"""The shape every workflow Lambda shares: parse the step's input model, call the step, return its output
model as JSON. Each `functions/<step>/app.py` is one line: `lambda_handler = workflow_step(<step>)`.

The models come from the step's own annotations (`def lock_source(data: LockSourceInput, settings) ->
LockSourceOutput`), so a step cannot be wired to the wrong model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, get_type_hints

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from mirrorcap.observability import logger, metrics, tracer
from mirrorcap.settings import Settings, load_settings

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)

LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def _capture_id_of(value: BaseModel) -> str | None:
    capture = getattr(value, "capture", None)
    return getattr(capture, "capture_id", None)


def step_name(step: Callable[..., Any]) -> str:
    """`lock_source` -> `LockSource`: the state's name, the metric's prefix."""
    return "".join(part.capitalize() for part in step.__name__.split("_"))


def workflow_step(step: Callable[[In, Settings], Out]) -> LambdaHandler:
    hints = get_type_hints(step)
    input_model: type[In] = hints["data"]
    output_model: type[Out] = hints["return"]

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        data = input_model.model_validate(event)
        logger.append_keys(capture_id=_capture_id_of(data), step=step.__name__)
        result = step(data, load_settings())
        if capture_id := _capture_id_of(result):  # ResolveRequest learns the id only now
            logger.append_keys(capture_id=capture_id)
        metrics.add_metric(name=f"{step_name(step)}Succeeded", unit=MetricUnit.Count, value=1)
        logger.info("step done")
        return result.model_dump(mode="json", exclude_none=True)

    # For tests, event samples and the ASL structural check (which fields a Choice may read).
    lambda_handler.step = step
    lambda_handler.input_model = input_model
    lambda_handler.output_model = output_model
    return lambda_handler
