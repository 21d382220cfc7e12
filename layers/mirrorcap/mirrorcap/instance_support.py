"""Which instance types Traffic Mirroring accepts as a source (DESIGN.md, "Traffic Mirroring" facts).

Sources must be Nitro-based, not bare metal, and not one of the families AWS lists as unsupported.
The family list is matched on the part of the type before the dot; a `*` entry covers every family
that starts with it (M7* = m7a, m7g, m7gd, m7i, m7i-flex, ...).
"""

from __future__ import annotations

UNSUPPORTED_FAMILIES = (
    "m6a", "m6i", "m7*", "m8g",
    "c6a", "c6i", "c7*", "c8g",
    "r6a", "r6i", "r7*", "r8g",
    "x2*", "x8g",
    "i4*", "im4gn", "is4gen",
    "inf2", "p5*", "trn1*",
    "hpc*",
    "t2",
)  # fmt: skip

# Variants of a listed family share its platform: m6i covers m6id, m6in and m6idn.
_VARIANT_SUFFIXES = ("d", "n", "dn", "e", "en", "-flex")


def _family(instance_type: str) -> str:
    return instance_type.split(".", 1)[0].lower()


def _listed(family: str) -> str | None:
    for entry in UNSUPPORTED_FAMILIES:
        if entry.endswith("*"):
            if family.startswith(entry[:-1]):
                return entry
        elif family == entry or any(family == entry + suffix for suffix in _VARIANT_SUFFIXES):
            return entry
    return None


def unsupported_reason(instance_type: str, hypervisor: str | None, bare_metal: bool) -> str | None:
    """Why Traffic Mirroring refuses this type as a source, or None when it is supported."""
    if bare_metal or ".metal" in instance_type:
        return f"{instance_type} is bare metal; Traffic Mirroring does not support bare metal sources"
    listed = _listed(_family(instance_type))
    if listed:
        return f"{instance_type} is in the {listed.upper()} family, which Traffic Mirroring does not support"
    if hypervisor != "nitro":
        return f"{instance_type} is not Nitro-based (hypervisor {hypervisor}); Traffic Mirroring needs Nitro"
    return None
