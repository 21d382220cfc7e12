"""CollectCapture: read the capture command's outcome and the manifest of the pcaps in S3."""

from mirrorcap.handler import workflow_step
from mirrorcap.steps.collect_capture import collect_capture

lambda_handler = workflow_step(collect_capture)
