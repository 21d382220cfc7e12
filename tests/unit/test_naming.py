"""Identifiers derived from a capture id are stable, bounded and safe where AWS and S3 use them."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from mirrorcap.naming import CAPTURE_ID_PATTERN, MAX_VNI, client_token, new_capture_id, vni_for

WHEN = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


def test_capture_id_is_readable_and_deterministic() -> None:
    first = new_capture_id(WHEN, "i-0123456789abcdef0", "alarm|2026-11-24T16:00:00")
    again = new_capture_id(WHEN, "i-0123456789abcdef0", "alarm|2026-11-24T16:00:00")
    other = new_capture_id(WHEN, "i-0123456789abcdef0", "alarm|2026-11-24T16:05:00")

    assert first == again != other
    assert first.startswith("mc-20261124t160000z-789abcdef0-")
    assert CAPTURE_ID_PATTERN.fullmatch(first)


@given(st.text(min_size=1, max_size=300))
def test_capture_ids_always_fit_the_pattern(discriminator: str) -> None:
    assert CAPTURE_ID_PATTERN.fullmatch(new_capture_id(WHEN, "i-01234567", discriminator))


@given(st.from_regex(CAPTURE_ID_PATTERN, fullmatch=True), st.text(alphabet="abcdefghij-0123456789", max_size=80))
def test_client_tokens_are_short_ascii_and_distinct_per_step(capture_id: str, step: str) -> None:
    token = client_token(capture_id, "arn:aws:states:us-east-1:123456789012:execution:m:x", step)

    assert len(token) <= 64 and token.isascii()
    assert token == client_token(capture_id, "arn:aws:states:us-east-1:123456789012:execution:m:x", step)
    assert token != client_token(capture_id, "arn:aws:states:us-east-1:123456789012:execution:m:x", step + "x")
    assert token != client_token(capture_id, "arn:aws:states:us-east-1:123456789012:execution:m:y", step)


@given(st.from_regex(CAPTURE_ID_PATTERN, fullmatch=True))
def test_vni_is_in_range(capture_id: str) -> None:
    assert 1 <= vni_for(capture_id) <= MAX_VNI
