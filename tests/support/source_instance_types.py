"""Instance types as mirror sources: one table that the preflight (tests/unit/test_instance_support.py) and the
emulation (tests/emulation/test_ec2_mirroring.py) are both checked against, so the two cannot disagree again.

Expectations come from AWS's "Traffic Mirroring limitations" page, section "Instance types"
(https://docs.aws.amazon.com/vpc/latest/mirroring/traffic-mirroring-network-limitations.html;
docs/aws-facts.md#traffic-mirroring-source-instance-types). Hypervisor and bare metal are what
DescribeInstanceTypes says of the type (the emulation test checks them against moto's copy of that data).
"""

from __future__ import annotations

from dataclasses import dataclass

SUPPORTED = "supported"
BARE_METAL = "bare metal"
NOT_NITRO = "not Nitro-based"


@dataclass(frozen=True)
class SourceType:
    instance_type: str
    hypervisor: str | None
    bare_metal: bool
    arm: bool
    # SUPPORTED, BARE_METAL, NOT_NITRO, or the family the refusal names ("M6I family").
    expected: str

    @property
    def supported(self) -> bool:
        return self.expected == SUPPORTED

    def __str__(self) -> str:
        return self.instance_type


def _nitro(instance_type: str, expected: str, *, arm: bool = False) -> SourceType:
    return SourceType(instance_type, "nitro", False, arm, expected)


def _xen(instance_type: str, expected: str) -> SourceType:
    return SourceType(instance_type, "xen", False, False, expected)


def _metal(instance_type: str, *, arm: bool = False) -> SourceType:
    return SourceType(instance_type, None, True, arm, BARE_METAL)


SOURCE_TYPES = (
    # Nitro families the page does not name: sources.
    _nitro("t3.medium", SUPPORTED),
    _nitro("t3a.large", SUPPORTED),
    _nitro("t4g.small", SUPPORTED, arm=True),
    _nitro("m5.large", SUPPORTED),
    _nitro("c5n.xlarge", SUPPORTED),
    _nitro("r5.2xlarge", SUPPORTED),
    _nitro("m6g.large", SUPPORTED, arm=True),
    _nitro("m6gd.large", SUPPORTED, arm=True),
    _nitro("c6g.large", SUPPORTED, arm=True),
    # x2gd shares the X2 prefix with three listed families but is not listed: an `x2*` wildcard refused it.
    _nitro("x2gd.large", SUPPORTED, arm=True),
    # Newer families the page does not (yet) name; matched exactly, so not refused by name.
    _nitro("c7i-flex.large", SUPPORTED),
    _nitro("m8gd.large", SUPPORTED, arm=True),
    _nitro("p5e.48xlarge", SUPPORTED),
    # The non-Nitro types the page lets be sources.
    _xen("m4.large", SUPPORTED),
    _xen("c4.large", SUPPORTED),
    _xen("i3.large", SUPPORTED),
    _xen("d2.xlarge", SUPPORTED),
    _xen("h1.2xlarge", SUPPORTED),
    _xen("r4.large", SUPPORTED),
    _xen("x1.16xlarge", SUPPORTED),
    _xen("x1e.xlarge", SUPPORTED),
    # "Note that this does not include T2 instances"; other Xen types are not on the page's list either.
    _xen("t2.micro", "T2 family"),
    _xen("m3.medium", NOT_NITRO),
    _xen("c3.large", NOT_NITRO),
    # General purpose
    _nitro("m6a.large", "M6A family"),
    _nitro("m6i.large", "M6I family"),
    _nitro("m6id.large", "M6ID family"),
    _nitro("m6in.large", "M6IN family"),
    _nitro("m6idn.large", "M6IDN family"),
    _nitro("m7a.large", "M7A family"),
    _nitro("m7g.medium", "M7G family", arm=True),
    _nitro("m7gd.large", "M7GD family", arm=True),
    _nitro("m7i.large", "M7I family"),
    _nitro("m7i-flex.large", "M7I-FLEX family"),
    _nitro("m8g.large", "M8G family", arm=True),
    # Compute optimized
    _nitro("c6a.large", "C6A family"),
    _nitro("c6gd.large", "C6GD family", arm=True),
    _nitro("c6gn.medium", "C6GN family", arm=True),
    _nitro("c6i.large", "C6I family"),
    _nitro("c6id.large", "C6ID family"),
    _nitro("c6in.large", "C6IN family"),
    _nitro("c7a.large", "C7A family"),
    _nitro("c7g.large", "C7G family", arm=True),
    _nitro("c7gd.large", "C7GD family", arm=True),
    _nitro("c7gn.large", "C7GN family", arm=True),
    _nitro("c7i.large", "C7I family"),
    _nitro("c8g.large", "C8G family", arm=True),
    # Memory optimized
    _nitro("r6a.large", "R6A family"),
    _nitro("r6i.large", "R6I family"),
    _nitro("r6id.large", "R6ID family"),
    _nitro("r6idn.large", "R6IDN family"),
    _nitro("r6in.large", "R6IN family"),
    _nitro("r7g.large", "R7G family", arm=True),
    _nitro("r7a.large", "R7A family"),
    _nitro("r7gd.large", "R7GD family", arm=True),
    _nitro("r7i.large", "R7I family"),
    _nitro("r7iz.large", "R7IZ family"),
    _nitro("r8g.large", "R8G family", arm=True),
    _nitro("x8g.large", "X8G family", arm=True),
    _nitro("x2idn.16xlarge", "X2IDN family"),
    _nitro("x2iedn.xlarge", "X2IEDN family"),
    _nitro("x2iezn.2xlarge", "X2IEZN family"),
    # Storage optimized
    _nitro("i4g.large", "I4G family", arm=True),
    _nitro("i4i.large", "I4I family"),
    _nitro("im4gn.large", "IM4GN family", arm=True),
    _nitro("is4gen.medium", "IS4GEN family", arm=True),
    # Accelerated computing
    _nitro("inf2.xlarge", "INF2 family"),
    _nitro("p5.48xlarge", "P5 family"),
    _nitro("trn1.2xlarge", "TRN1 family"),
    _nitro("trn1n.32xlarge", "TRN1N family"),
    # High-performance computing
    _nitro("hpc6a.48xlarge", "HPC6A family"),
    _nitro("hpc6id.32xlarge", "HPC6ID family"),
    _nitro("hpc7a.96xlarge", "HPC7A family"),
    _nitro("hpc7g.4xlarge", "HPC7G family", arm=True),
    # Bare metal, of supported and unsupported families alike.
    _metal("m5.metal"),
    _metal("c6g.metal", arm=True),
    _metal("m7i.metal-24xl"),
)
