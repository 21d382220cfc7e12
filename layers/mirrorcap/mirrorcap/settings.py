"""Deployment settings: what the template passes to every function as environment variables.

Read when a handler runs (never at import), validated, and named after the template parameter that
sets them, so a misconfigured stack fails with the parameter's name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mirrorcap.errors import MirrorcapMisconfigured


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    capture_bucket: str = Field(alias="CAPTURE_BUCKET", min_length=3, max_length=63)
    collector_instance_profile: str = Field(alias="COLLECTOR_INSTANCE_PROFILE_ARN", min_length=1)
    lock_table: str = Field(alias="LOCK_TABLE", min_length=3)
    upload_signer_role_arn: str = Field(alias="UPLOAD_SIGNER_ROLE_ARN", min_length=20)
    collector_instance_type: str = Field(default="t3.medium", alias="COLLECTOR_INSTANCE_TYPE")
    # Empty: the account's default EBS key. A customer managed key needs the stack's KMS grants (template).
    collector_kms_key_arn: str = Field(default="", alias="COLLECTOR_KMS_KEY_ARN")
    collector_volume_gib: int = Field(default=30, alias="COLLECTOR_VOLUME_GIB", ge=8, le=16384)
    default_duration_seconds: int = Field(default=300, alias="DEFAULT_CAPTURE_SECONDS", ge=10)
    max_duration_seconds: int = Field(default=3600, alias="MAX_CAPTURE_SECONDS", ge=10, le=86400)
    readiness_timeout_seconds: int = Field(default=600, alias="READINESS_TIMEOUT_SECONDS", ge=60, le=3600)
    teardown_max_attempts: int = Field(default=20, alias="TEARDOWN_MAX_ATTEMPTS", ge=1, le=100)
    state_machine_arn: str | None = Field(default=None, alias="STATE_MACHINE_ARN")
    notification_topic_arn: str | None = Field(default=None, alias="NOTIFICATION_TOPIC_ARN")
    stack_name: str = Field(default="mirrorcap", alias="STACK_NAME")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    try:
        return Settings.model_validate({k: v for k, v in env.items() if k in _ALIASES})
    except ValidationError as exc:
        problems = "; ".join(f"{err['loc'][0]}: {err['msg']}" for err in exc.errors())
        raise MirrorcapMisconfigured(f"mirrorcap is misconfigured: {problems}") from exc


_ALIASES = {field.alias for field in Settings.model_fields.values()}
