"""The emulated S3 POST policy checks (mirrorcap_tools.emulation.s3_post), on grants minted by the
workflow's own mint_upload_grant: AssumeRole, then botocore's generate_presigned_post."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from mirrorcap import runtime
from mirrorcap.collector.grant import GRANT_SECONDS, mint_upload_grant
from mirrorcap.runtime import AwsClients
from mirrorcap_tools.emulation.errors import AwsError
from mirrorcap_tools.emulation.s3_post import check_post
from moto import mock_aws

ACCOUNT = "123456789012"
BUCKET = "mirrorcap-captures-123456789012"
CAPTURE_ID = "mc-20261124t160000z-0abc1234de-3f9a1c"
PREFIX = f"captures/{CAPTURE_ID}/"


@pytest.fixture
def grant_fields():
    """The fields of a grant minted as StartCapture mints one (AssumeRole, then presigned POST), plus
    those the collector adds."""
    with mock_aws():
        runtime.configure(clients=AwsClients(boto3.session.Session(region_name="us-east-1")))
        try:
            grant = mint_upload_grant(BUCKET, CAPTURE_ID, 1000, f"arn:aws:iam::{ACCOUNT}:role/mirrorcap/stack/signer")
        finally:
            runtime.configure()
        yield {
            **grant.fields,
            "key": f"{PREFIX}a.pcap",
            "Content-Type": "application/vnd.tcpdump.pcap",
            "x-amz-meta-sha256": "ab" * 32,
            "x-amz-meta-packets": "10",
        }


def signed_at(fields: dict) -> datetime:
    return datetime.strptime(fields["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def refusal(fields: dict, size: int = 100, bucket: str = BUCKET, age_seconds: float = 1) -> AwsError:
    with pytest.raises(AwsError) as refused:
        check_post(ACCOUNT, bucket, fields, size, signed_at(fields) + timedelta(seconds=age_seconds))
    return refused.value


def test_a_post_as_the_collector_sends_it_is_accepted(grant_fields):
    check_post(ACCOUNT, BUCKET, grant_fields, 1000, signed_at(grant_fields) + timedelta(seconds=GRANT_SECONDS - 1))
    check_post(ACCOUNT, BUCKET, grant_fields, 0, signed_at(grant_fields))


def test_a_key_outside_the_capture_s_prefix_is_refused(grant_fields):
    for key in ("captures/mc-other/a.pcap", "a.pcap", PREFIX.rstrip("/"), "reports/" + PREFIX):
        error = refusal({**grant_fields, "key": key})
        assert error.code == "AccessDenied"
        assert json.dumps(["starts-with", "$key", PREFIX]) in error.message


def test_an_expired_grant_is_refused(grant_fields):
    error = refusal(grant_fields, age_seconds=GRANT_SECONDS)
    assert (error.code, error.message) == ("AccessDenied", "Invalid according to Policy: Policy expired.")


def test_an_object_over_the_size_limit_is_refused(grant_fields):
    assert refusal(grant_fields, size=1001).code == "EntityTooLarge"


def test_another_bucket_is_refused(grant_fields):
    assert '{"bucket": "mirrorcap-captures-123456789012"}' in refusal(grant_fields, bucket="other-bucket").message


def test_a_field_the_policy_does_not_name_is_refused(grant_fields):
    error = refusal({**grant_fields, "x-amz-meta-owner": "evil", "acl": "public-read"})
    assert error.message == "Invalid according to Policy: Extra input fields: acl, x-amz-meta-owner"


def test_a_field_the_policy_names_but_the_form_lacks_is_refused(grant_fields):
    fields = dict(grant_fields)
    del fields["x-amz-meta-sha256"]
    assert "$x-amz-meta-sha256" in refusal(fields).message


def test_a_forged_policy_or_signature_is_refused(grant_fields):
    assert refusal({**grant_fields, "x-amz-signature": "0" * 64}).code == "SignatureDoesNotMatch"
    wider = grant_fields["policy"][:-4] + "AAAA"
    assert refusal({**grant_fields, "policy": wider}).code == "SignatureDoesNotMatch"


def test_an_unknown_access_key_is_refused(grant_fields):
    credential = grant_fields["x-amz-credential"].split("/", 1)[1]
    assert (
        refusal({**grant_fields, "x-amz-credential": f"ASIAUNKNOWNKEY000000/{credential}"}).code == "InvalidAccessKeyId"
    )
