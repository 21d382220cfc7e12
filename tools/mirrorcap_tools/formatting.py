"""How the tools print sizes to a person (the offline run's summary, `mirrorcap watch`)."""

from __future__ import annotations


def human_bytes(count: int) -> str:
    """1536 -> '1.5 KB' (powers of 1024; whole bytes below 1 KB)."""
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"
