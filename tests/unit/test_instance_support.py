"""Which instance types can be mirror sources (DESIGN.md's list)."""

from __future__ import annotations

import pytest
from mirrorcap.instance_support import unsupported_reason


@pytest.mark.parametrize(
    "instance_type", ["m5.large", "c5n.xlarge", "r5.2xlarge", "t3.medium", "t4g.small", "m6g.large", "c6gn.medium"]
)
def test_nitro_types_outside_the_list_are_supported(instance_type: str) -> None:
    assert unsupported_reason(instance_type, "nitro", bare_metal=False) is None


@pytest.mark.parametrize(
    ("instance_type", "family"),
    [
        ("m6i.large", "M6I"), ("m6id.large", "M6I"), ("m6a.xlarge", "M6A"), ("m7g.medium", "M7*"),
        ("m7i-flex.large", "M7*"), ("c7gn.large", "C7*"), ("c6in.large", "C6I"), ("r7iz.large", "R7*"),
        ("r8g.large", "R8G"), ("x2idn.16xlarge", "X2*"), ("i4i.large", "I4*"), ("im4gn.large", "IM4GN"),
        ("inf2.xlarge", "INF2"), ("p5.48xlarge", "P5*"), ("trn1n.32xlarge", "TRN1*"), ("hpc7g.4xlarge", "HPC*"),
        ("t2.micro", "T2"),
    ],
)  # fmt: skip
def test_listed_families_are_refused_by_name(instance_type: str, family: str) -> None:
    reason = unsupported_reason(instance_type, "nitro", bare_metal=False)

    assert reason and f"{family} family" in reason


def test_bare_metal_is_refused() -> None:
    assert "bare metal" in unsupported_reason("m5.metal", None, bare_metal=True)


def test_xen_types_are_refused() -> None:
    assert "not Nitro-based" in unsupported_reason("m4.large", "xen", bare_metal=False)
