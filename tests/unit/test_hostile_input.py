"""Hostile and malformed trigger input: whatever arrives, ResolveRequest answers with a valid request or
a named rejection (InvalidCaptureRequest and its kinds) and creates nothing."""

from __future__ import annotations

import json
import string
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mirrorcap.errors import InvalidCaptureRequest
from mirrorcap.models import ResolveRequestInput, ResolveRequestOutput
from mirrorcap.settings import load_settings
from mirrorcap.steps.resolve_request import resolve_request
from mirrorcap.tagged import managed_resources

NASTY = [
    "", " ", "\n", "\x00", "i-0123456789abcdef0\n; rm -rf /", "$(reboot)", "`id`", "'; DROP TABLE x; --", "../../etc/passwd",
    "captures/../../other", "%2e%2e%2f", "\u202e", "ｉ-０１２３", "i-0123456789ABCDEF0", "A" * 10_000, "😀" * 100,
    "{{ssm:secret}}", "${AWS::AccountId}", "\r\n", "i-01234567\t", "-1", "1e309", "NaN",
]  # fmt: skip
TRIED: Counter = Counter()

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
    st.text(max_size=40), st.sampled_from(NASTY),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["instance_id", "duration_seconds", "filter", "packet_length", "network_interface_id", "capture_id", "origin",
          "sample", "source", "detail-type", "detail", "time"]  # fmt: skip
FILTER_FIELDS = ["directions", "protocol", "ports", "remote_ports", "cidrs", "include_amazon_dns"]


def _documents():
    manual = st.fixed_dictionaries(
        {"instance_id": st.one_of(st.sampled_from(["i-0123456789abcdef0", "i-0aaaabbbbccccdddd"]), values)},
        optional={
            "duration_seconds": values,
            "packet_length": values,
            "capture_id": values,
            "filter": st.dictionaries(st.sampled_from(FILTER_FIELDS), values, max_size=4),
        },
    )
    alarm = st.fixed_dictionaries(
        {
            "source": st.just("aws.cloudwatch"),
            "detail-type": st.just("CloudWatch Alarm State Change"),
            "time": st.one_of(st.just("2026-11-24T16:00:00Z"), values),
            "detail": st.fixed_dictionaries(
                {
                    "alarmName": values,
                    "state": st.fixed_dictionaries({"value": st.sampled_from(["ALARM", "OK", ""])}),
                    "configuration": st.one_of(
                        values, st.fixed_dictionaries({"metrics": st.lists(values, max_size=3)})
                    ),
                },
                optional={"alarmTags": values},
            ),  # fmt: skip
        }
    )
    sample = st.fixed_dictionaries({"sample": values}, optional={"duration_seconds": values})
    anything = st.dictionaries(st.sampled_from(FIELDS), values, max_size=5)
    return st.one_of(manual, alarm, sample, anything)


@pytest.fixture(scope="module")
def world():
    from mirrorcap_tools.emulation import OfflineAws
    from mirrorcap_tools.offline.collector import SampleCaptureCollector
    from mirrorcap_tools.offline.world import build_world

    with OfflineAws(SampleCaptureCollector()) as aws:
        yield build_world(aws)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(document=_documents())
def test_any_document_is_resolved_or_rejected_by_name(world, document) -> None:
    data = ResolveRequestInput(
        event=json.loads(json.dumps(document, allow_nan=True)),
        execution={
            "id": "arn:aws:states:us-east-1:123456789012:execution:m:fuzz",
            "start_time": "2026-11-24T16:00:00Z",
        },
    )
    try:
        result = resolve_request(data, load_settings())
    except InvalidCaptureRequest as rejected:
        TRIED[type(rejected).__name__] += 1
        assert str(rejected) and len(str(rejected)) < 20_000
        return
    TRIED["accepted"] += 1
    assert isinstance(result, ResolveRequestOutput)
    capture = result.capture
    if capture is not None:
        # What reaches S3 keys and the collector's shell later is only ever these shapes.
        assert set(capture.capture_id) <= set(string.ascii_lowercase + string.digits + "-")
        assert capture.instance_id.startswith("i-") and capture.instance_id[2:].isalnum()


def test_nothing_was_created_and_report(world) -> None:
    assert not managed_resources()
    print(f"\nhostile input: {sum(TRIED.values())} documents tried: {dict(TRIED)}")
    assert sum(TRIED.values()) >= 400


@pytest.mark.parametrize(
    "capture_id", ["../../x", "captures/../x", "MC-UPPER", "a", "-leading", "x" * 64, "mc_1", "mc 1"]
)
def test_capture_ids_that_could_escape_their_prefix_are_refused(world, capture_id: str) -> None:
    data = ResolveRequestInput(
        event={"instance_id": "i-0123456789abcdef0", "capture_id": capture_id},
        execution={"id": "arn:aws:states:us-east-1:123456789012:execution:m:x", "start_time": "2026-11-24T16:00:00Z"},
    )
    with pytest.raises(InvalidCaptureRequest, match="capture_id"):
        resolve_request(data, load_settings())
