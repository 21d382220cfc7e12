"""SweepOrphans (scheduled): delete what stopped or timed-out runs left behind; never untagged resources."""

from mirrorcap.handler import workflow_step
from mirrorcap.models import SweepRequest
from mirrorcap.workflow.sweep import sweep_orphans

lambda_handler = workflow_step(SweepRequest, sweep_orphans)
