"""Offline runs of the whole workflow on emulated AWS (the demo, `mirrorcap offline`, integration tests)."""
