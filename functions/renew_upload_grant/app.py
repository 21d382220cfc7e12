"""RenewUploadGrant: hand a long-running capture a fresh upload grant before its current one expires."""

from mirrorcap.handler import workflow_step
from mirrorcap.steps.renew_upload_grant import renew_upload_grant

lambda_handler = workflow_step(renew_upload_grant)
