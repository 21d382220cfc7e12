"""mirrorcap tests: unit (fast, `make unit`), emulation, integration, capture, report tiers; shared helpers in tests.support."""
