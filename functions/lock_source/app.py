"""LockSource: take the source interface's capture lock, or end cleanly if another capture holds it."""

from mirrorcap.handler import workflow_step
from mirrorcap.steps.lock_source import lock_source

lambda_handler = workflow_step(lock_source)
