"""The preflight's instance-type rule against AWS's "Traffic Mirroring limitations" page
(docs/aws-facts.md#traffic-mirroring-source-instance-types), through the table the emulation is checked against too."""

from __future__ import annotations

import pytest
from mirrorcap.instance_support import (
    MIRRORABLE_NON_NITRO_FAMILIES,
    NAMED_UNSUPPORTED_NON_NITRO_FAMILIES,
    UNSUPPORTED_NITRO_FAMILIES,
    instance_family,
    unsupported_reason,
)

from tests.support.source_instance_types import SOURCE_TYPES, SourceType


@pytest.mark.parametrize("source", SOURCE_TYPES, ids=str)
def test_the_preflight_follows_the_page(source: SourceType) -> None:
    reason = unsupported_reason(source.instance_type, source.hypervisor, source.bare_metal)

    if source.supported:
        assert reason is None
    else:
        assert reason and source.expected in reason


def test_the_table_has_a_row_for_every_family_the_page_names() -> None:
    # A family added to the list without a row here (or a row whose family fell off the list) fails this.
    refused_by_name = {instance_family(s.instance_type) for s in SOURCE_TYPES if s.expected.endswith(" family")}

    assert refused_by_name == UNSUPPORTED_NITRO_FAMILIES | NAMED_UNSUPPORTED_NON_NITRO_FAMILIES


def test_the_table_has_a_row_for_most_mirrorable_non_nitro_families() -> None:
    # p2, p3 and g3/g3s are retired and absent from the instance-type data the emulation uses; the rest have rows.
    rows = {instance_family(s.instance_type) for s in SOURCE_TYPES if s.supported and s.hypervisor == "xen"}

    assert MIRRORABLE_NON_NITRO_FAMILIES - rows == {"g3", "g3s", "p2", "p3"}


@pytest.mark.parametrize("instance_type", ["m6i.large", "M6I.LARGE", "M6i.Large"])
def test_families_match_whatever_the_case(instance_type: str) -> None:
    assert "M6I family" in unsupported_reason(instance_type, "nitro", bare_metal=False)


@pytest.mark.parametrize("instance_type", ["m5.metal", "c6i.metal-32xl"])
def test_a_metal_size_is_refused_even_when_describe_said_nothing(instance_type: str) -> None:
    assert "bare metal" in unsupported_reason(instance_type, None, bare_metal=False)


def test_an_unknown_hypervisor_is_refused_unless_the_family_is_a_mirrorable_non_nitro_one() -> None:
    assert "hypervisor unknown" in unsupported_reason("m3.medium", None, bare_metal=False)
    assert unsupported_reason("m4.large", None, bare_metal=False) is None


def test_the_listed_families_do_not_overlap() -> None:
    assert not UNSUPPORTED_NITRO_FAMILIES & MIRRORABLE_NON_NITRO_FAMILIES
    assert not NAMED_UNSUPPORTED_NON_NITRO_FAMILIES & MIRRORABLE_NON_NITRO_FAMILIES
