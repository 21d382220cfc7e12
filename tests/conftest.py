"""Fixtures shared by the test tiers: an emulated AWS account with the stack deployed into it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import TEST_SPEEDUP


@pytest.fixture(scope="session")
def sample_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small VXLAN pcap for the emulated collector to deliver (independent of the committed sample)."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.layers.vxlan import VXLAN
    from scapy.utils import wrpcap

    inner = Ether() / IP(src="10.0.1.10", dst="10.0.1.20") / TCP(sport=40000, dport=80, flags="S")
    packet = Ether() / IP(src="10.0.1.10", dst="10.0.1.99") / UDP(sport=50000, dport=4789) / VXLAN(vni=42) / inner
    path = tmp_path_factory.mktemp("sample") / "sample.pcap"
    wrpcap(str(path), [packet] * 3)
    return path


@pytest.fixture
def offline(sample_pcap: Path, request: pytest.FixtureRequest) -> Iterator:
    """A fresh emulated account with the stack deployed. Parametrize indirectly with OfflineAws kwargs."""
    from mirrorcap_tools.emulation import OfflineAws
    from mirrorcap_tools.offline.collector import SampleCaptureCollector
    from mirrorcap_tools.offline.world import build_world

    options = dict(getattr(request, "param", {}) or {})
    collector = SampleCaptureCollector(sample=sample_pcap, outcome=options.pop("command_outcome", "Success"))
    parameters = options.pop("parameters", None)
    with OfflineAws(collector, speedup=options.pop("speedup", TEST_SPEEDUP), **options) as aws:
        yield build_world(aws, parameters)
