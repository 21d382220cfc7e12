"""The emulated collector. tcpdump cannot capture mirrored traffic inside an emulation, so when the
capture command "finishes", a real sample capture (data/sample-capture.pcap, made by the real capture
script in network namespaces: see data/sample-capture.md) is delivered in its place, in the layout
and with the manifest the real script produces. Offline output says so wherever it shows the pcap.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from mirrorcap.collector.manifest import MANIFEST_NAME, CaptureManifest, summarize_pcap_file
from mirrorcap.naming import TAG_CAPTURE_SECONDS, capture_prefix, vni_for
from mirrorcap.runtime import now
from moto.s3.models import s3_backends

from mirrorcap_tools.emulation.ssm_agent import CommandOutcome, SentCommand

SAMPLE_PCAP = Path(__file__).parent / "data" / "sample-capture.pcap"
COMMENT_PREFIX = "mirrorcap capture "
UPLOAD_SECONDS = 5  # closing and uploading the last file after the window
SIMULATION_NOTICE = (
    "offline: the collector's tcpdump cannot run in emulation; the pcap in S3 is a real sample capture "
    "(tools/mirrorcap_tools/offline/data/sample-capture.pcap), not this run's traffic"
)


class SampleCaptureCollector:
    def __init__(self, sample: Path = SAMPLE_PCAP, outcome: str = "Success") -> None:
        self.sample = sample
        # Tests choose: "Failed" (tcpdump never ran, nothing delivered) or "disk_limit" (the disk guard
        # stopped it: files and manifest delivered, exit code 4, so SSM reports Failed).
        self.outcome = outcome

    def plan(self, command: SentCommand) -> tuple[float, Callable[[], CommandOutcome]]:
        capture_id = command.comment.removeprefix(COMMENT_PREFIX)
        tags = {tag["key"]: tag["value"] for tag in command.instance.get_tags()}
        duration = float(tags.get(TAG_CAPTURE_SECONDS, 60))
        started = now()

        def finish() -> CommandOutcome:
            if self.outcome == "Failed":
                return CommandOutcome(
                    status="Failed", response_code=1, stderr="tcpdump: ens5: No such device exists (simulated)"
                )
            if self.outcome == "disk_limit":
                self._deliver(command, capture_id, started, duration, status="disk_limit", exit_code=4)
                return CommandOutcome(status="Failed", response_code=4, stderr="stopped: free disk below the reserve")
            self._deliver(command, capture_id, started, duration)
            return CommandOutcome(status="Success", stdout=SIMULATION_NOTICE)

        return duration + UPLOAD_SECONDS, finish

    def _deliver(
        self,
        command: SentCommand,
        capture_id: str,
        started: datetime,
        duration: float,
        status: str = "complete",
        exit_code: int = 0,
    ) -> None:
        if not self.sample.is_file():
            raise FileNotFoundError(f"the offline sample capture is missing: {self.sample}")
        s3 = s3_backends[command.account_id]["aws"]
        prefix = capture_prefix(capture_id)
        # The capture script's key layout: <capture-id>-<time slot start>-<size rotation>.pcap
        key = f"{prefix}{capture_id}-{started:%Y%m%dT%H%M%SZ}-00000.pcap"
        s3.put_object(command.output_bucket, key, self.sample.read_bytes())
        pcap = summarize_pcap_file(self.sample, key)
        manifest = CaptureManifest(
            capture_id=capture_id,
            status=status,
            interface="ens5",
            vni=vni_for(capture_id),
            started_at=started,
            ended_at=started + timedelta(seconds=duration),
            files=[pcap],
            packets_captured=pcap.packets,
            packets_dropped_by_kernel=0,
            exit_code=exit_code,
        )
        s3.put_object(command.output_bucket, f"{prefix}{MANIFEST_NAME}", manifest.model_dump_json(indent=2).encode())
