"""FanOut: start one capture execution per instance when a trigger names several."""

from mirrorcap.handler import workflow_step
from mirrorcap.models import FanOutInput
from mirrorcap.workflow.fanout import start_captures

lambda_handler = workflow_step(FanOutInput, start_captures)
