"""CheckCollectorReady: is the collector running with its SSM agent online (or out of time)?"""

from mirrorcap.handler import workflow_step
from mirrorcap.steps.check_collector_ready import check_collector_ready

lambda_handler = workflow_step(check_collector_ready)
