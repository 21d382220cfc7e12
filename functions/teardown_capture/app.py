"""TeardownCapture: delete everything the capture created, in AWS's order; idempotent."""

from mirrorcap.handler import workflow_step
from mirrorcap.models import TeardownInput
from mirrorcap.workflow.teardown import teardown_capture

lambda_handler = workflow_step(TeardownInput, teardown_capture)
