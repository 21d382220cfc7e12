"""TeardownCapture: delete everything the capture created, in AWS's order; idempotent."""

from mirrorcap.handler import workflow_step
from mirrorcap.steps.teardown_capture import teardown_capture

lambda_handler = workflow_step(teardown_capture)
