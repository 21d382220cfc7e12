"""SweepOrphans (scheduled): delete what stopped or timed-out runs left behind; never untagged resources."""

from mirrorcap.handler import workflow_step
from mirrorcap.steps.sweep_orphans import sweep_orphans

lambda_handler = workflow_step(sweep_orphans)
