"""RenewUploadGrant: hand a long-running capture a fresh upload grant before its current one expires."""

from mirrorcap.handler import workflow_step
from mirrorcap.models import RenewUploadGrantInput
from mirrorcap.workflow.capture import renew_upload_grant

lambda_handler = workflow_step(RenewUploadGrantInput, renew_upload_grant)
