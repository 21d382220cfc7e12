"""LaunchCollector: start the locked-down collector instance in the source's subnet."""

from mirrorcap.handler import workflow_step
from mirrorcap.steps.launch_collector import launch_collector

lambda_handler = workflow_step(launch_collector)
