"""StartCapture: send the capture script to the collector through SSM Run Command."""

from mirrorcap.handler import workflow_step
from mirrorcap.steps.start_capture import start_capture

lambda_handler = workflow_step(start_capture)
