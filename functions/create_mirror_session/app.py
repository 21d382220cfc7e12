"""CreateMirrorSession: mirror target, filter and rules, and the session from the source interface."""

from mirrorcap.handler import workflow_step
from mirrorcap.models import CollectorStep
from mirrorcap.workflow.mirror import create_mirror_session

lambda_handler = workflow_step(CollectorStep, create_mirror_session)
