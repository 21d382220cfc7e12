"""CheckCollectorReady: is the collector running with its SSM agent online (or out of time)?"""

from mirrorcap.handler import workflow_step
from mirrorcap.models import CollectorStep
from mirrorcap.workflow.collector import check_collector_ready

lambda_handler = workflow_step(CollectorStep, check_collector_ready)
