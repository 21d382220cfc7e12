"""Where the namespace lab cannot run, the capture tests say why instead of failing. No root needed."""

from __future__ import annotations

import shutil

from mirrorcap_tools import netns


def test_without_root_the_reason_is_root(monkeypatch):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert netns.unavailable_reason() == "needs root (network namespaces, tc, tcpdump)"


def test_a_missing_tool_is_named_with_where_it_comes_from(monkeypatch):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    real_which = shutil.which
    monkeypatch.setattr(netns.shutil, "which", lambda tool: None if tool == "tcpdump" else real_which(tool))
    assert netns.unavailable_reason() == "tcpdump is not installed (scripts/install-system-packages.sh installs it)"
