"""StartCapture: send the capture script to the collector through SSM Run Command."""

from mirrorcap.handler import workflow_step
from mirrorcap.models import StartCaptureInput
from mirrorcap.workflow.capture import start_capture

lambda_handler = workflow_step(StartCaptureInput, start_capture)
