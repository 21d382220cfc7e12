"""FanOut: start one capture execution per instance when a trigger names several."""

from mirrorcap.handler import workflow_step
from mirrorcap.steps.fan_out import fan_out

lambda_handler = workflow_step(fan_out)
