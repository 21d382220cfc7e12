"""The shape every workflow Lambda shares: parse the input model, call one domain function, return its
output as JSON. Each `functions/<step>/app.py` is one call to `workflow_step`.
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

LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def _capture_id_of(value: BaseModel) -> str | None:
    capture = getattr(value, "capture", None)
    return getattr(capture, "capture_id", None)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def workflow_step(model: type[In], step: Callable[[In, Settings], BaseModel]) -> LambdaHandler:
    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        data = model.model_validate(event)
        logger.append_keys(capture_id=_capture_id_of(data), step=step.__name__)
        result = step(data, load_settings())
        if capture_id := _capture_id_of(result):  # ResolveRequest learns the id only now
            logger.append_keys(capture_id=capture_id)
        metrics.add_metric(name=f"{_camel(step.__name__)}Succeeded", unit=MetricUnit.Count, value=1)
        logger.info("step done")
        return result.model_dump(mode="json", exclude_none=True)

    # For tests, event samples and the ASL structural check (which fields a Choice may read).
    lambda_handler.input_model = model  # type: ignore[attr-defined]
    lambda_handler.output_model = get_type_hints(step)["return"]  # type: ignore[attr-defined]
    return lambda_handler
