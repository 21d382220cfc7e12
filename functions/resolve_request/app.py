"""ResolveRequest: validate the trigger's input (alarm, manual document or schedule) into capture requests."""

from mirrorcap.handler import workflow_step
from mirrorcap.models import ResolveRequestInput
from mirrorcap.workflow.resolve import resolve_request

lambda_handler = workflow_step(ResolveRequestInput, resolve_request)
