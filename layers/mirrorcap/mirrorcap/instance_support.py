"""Which instance types Traffic Mirroring accepts as a source: the one list, used by the preflight and the emulation.

Source: AWS, "Traffic Mirroring limitations", section "Instance types"
(https://docs.aws.amazon.com/vpc/latest/mirroring/traffic-mirroring-network-limitations.html), summarised with
the date it was checked in docs/aws-facts.md#traffic-mirroring-source-instance-types. The page says:
- these virtualized Nitro families cannot be sources (UNSUPPORTED_NITRO_FAMILIES below, copied one for one);
- bare metal instances cannot be sources;
- of the non-Nitro (Xen) types only C4, D2, G3, G3s, H1, I3, M4, P2, P3, R4, X1 and X1e can, "not T2".

Families are matched exactly, on the part of the type before the dot (m7i-flex.large -> m7i-flex), with no
wildcards: the page names every variant it excludes (M6i, M6id, M6idn, M6in), and a family it does not name
(m8gd, c7i-flex, p5e, x2gd, hpc8a...) is not refused here. If AWS refuses such a family anyway, CreateTrafficMirror
Session answers NetworkInterfaceNotSupported, which the workflow reports (and tears down after) like any refusal:
re-check the page and add the family here.
"""

from __future__ import annotations

# The page's list, in the page's order, one entry per family it names.
UNSUPPORTED_NITRO_FAMILIES = frozenset({
    # General purpose
    "m8g", "m6a", "m6i", "m6id", "m6idn", "m6in", "m7a", "m7g", "m7gd", "m7i", "m7i-flex",
    # Compute optimized
    "c8g", "c6a", "c6gd", "c6gn", "c6i", "c6id", "c6in", "c7a", "c7g", "c7gd", "c7gn", "c7i",
    # Memory optimized
    "r8g", "r6a", "r6i", "r6id", "r6idn", "r6in", "r7a", "r7g", "r7gd", "r7i", "r7iz", "x8g", "x2idn", "x2iedn",
    "x2iezn",
    # Storage optimized
    "i4g", "i4i", "im4gn", "is4gen",
    # Accelerated computing
    "inf2", "p5", "trn1", "trn1n",
    # High-performance computing
    "hpc6a", "hpc6id", "hpc7a", "hpc7g",
})  # fmt: skip

# The only non-Nitro (Xen) families that can be sources. The page adds "this does not include T2": T2 is Xen and
# is refused by the rule below, but under its own name, since it is the Xen type people most often try.
MIRRORABLE_NON_NITRO_FAMILIES = frozenset({"c4", "d2", "g3", "g3s", "h1", "i3", "m4", "p2", "p3", "r4", "x1", "x1e"})
NAMED_UNSUPPORTED_NON_NITRO_FAMILIES = frozenset({"t2"})


def instance_family(instance_type: str) -> str:
    """The family, as the page names it: what comes before the dot (c6gn.medium -> c6gn)."""
    return instance_type.split(".", 1)[0].lower()


def unsupported_reason(instance_type: str, hypervisor: str | None, bare_metal: bool) -> str | None:
    """Why Traffic Mirroring refuses this type as a source, or None when it is supported.

    `hypervisor` and `bare_metal` are DescribeInstanceTypes' Hypervisor ("nitro", "xen", absent for metal)
    and BareMetal for the type.
    """
    family = instance_family(instance_type)
    # Bare metal sizes are named metal, metal-24xl, metal-48xl...
    if bare_metal or instance_type.lower().split(".", 1)[-1].startswith("metal"):
        return f"{instance_type} is bare metal; Traffic Mirroring does not support bare metal sources"
    if family in UNSUPPORTED_NITRO_FAMILIES or family in NAMED_UNSUPPORTED_NON_NITRO_FAMILIES:
        return f"{instance_type} is in the {family.upper()} family, which Traffic Mirroring does not support"
    if hypervisor == "nitro" or family in MIRRORABLE_NON_NITRO_FAMILIES:
        return None
    return (
        f"{instance_type} is not Nitro-based (hypervisor {hypervisor or 'unknown'}) and not one of the non-Nitro "
        f"types Traffic Mirroring supports ({', '.join(sorted(f.upper() for f in MIRRORABLE_NON_NITRO_FAMILIES))})"
    )
