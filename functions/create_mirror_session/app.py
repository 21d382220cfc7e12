"""CreateMirrorSession: mirror target, filter and rules, and the session from the source interface."""

from mirrorcap.handler import workflow_step
from mirrorcap.steps.create_mirror_session import create_mirror_session

lambda_handler = workflow_step(create_mirror_session)
