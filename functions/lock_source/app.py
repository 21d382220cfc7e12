"""LockSource: take the source interface's capture lock, or end cleanly if another capture holds it."""

from mirrorcap.handler import workflow_step
from mirrorcap.models import LaunchCollectorInput
from mirrorcap.workflow.lock import acquire_source_lock

lambda_handler = workflow_step(LaunchCollectorInput, acquire_source_lock)
