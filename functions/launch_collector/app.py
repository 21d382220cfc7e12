"""LaunchCollector: start the locked-down collector instance in the source's subnet."""

from mirrorcap.handler import workflow_step
from mirrorcap.models import LaunchCollectorInput
from mirrorcap.workflow.collector import launch_collector

lambda_handler = workflow_step(LaunchCollectorInput, launch_collector)
