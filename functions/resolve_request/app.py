"""ResolveRequest: validate the trigger's input (alarm, manual document or schedule) into capture requests."""

from mirrorcap.handler import workflow_step
from mirrorcap.steps.resolve_request import resolve_request

lambda_handler = workflow_step(resolve_request)
