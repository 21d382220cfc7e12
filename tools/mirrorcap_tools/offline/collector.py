"""The emulated collector. tcpdump cannot capture mirrored traffic inside an emulation, so when the
capture command "finishes", a real sample capture (data/sample-capture.pcap, made by the real capture
script in network namespaces: see data/sample-capture.md) is delivered in its place, in the layout
and with the manifest the real script produces. Offline output says so wherever it shows the pcap.

Like the real collector it has no S3 permission: it uploads with the upload grant its commands carry
(the capture command's, then each renewal's), and S3's checks of that grant are emulated (s3_post). A
grant that has expired by the time the last files go up fails the capture as the script would.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mirrorcap.collector.command import HEREDOC_END, grant_path
from mirrorcap.collector.manifest import (
    MANIFEST_NAME,
    CaptureExit,
    CaptureManifest,
    CaptureStatus,
    summarize_pcap_file,
)
from mirrorcap.naming import TAG_CAPTURE_SECONDS, capture_prefix, vni_for
from mirrorcap.runtime import now
from moto.s3.models import s3_backends

from mirrorcap_tools.emulation.errors import AwsError
from mirrorcap_tools.emulation.s3_post import check_post
from mirrorcap_tools.emulation.ssm_agent import CommandOutcome, SentCommand

SAMPLE_PCAP = Path(__file__).parent / "data" / "sample-capture.pcap"
COMMENT_PREFIX = "mirrorcap capture "
GRANT_COMMENT_PREFIX = "mirrorcap upload grant "
UPLOAD_SECONDS = 5  # closing and uploading the last file after the window
GRANT_WRITE_SECONDS = 1
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
        self._grants: dict[str, list[tuple[datetime, dict[str, str]]]] = {}  # capture id -> [(received at, grant)]

    def plan(self, command: SentCommand) -> tuple[float, Callable[[], CommandOutcome]]:
        if command.comment.startswith(GRANT_COMMENT_PREFIX):
            self._receive_grant(command.comment.removeprefix(GRANT_COMMENT_PREFIX), command)
            return GRANT_WRITE_SECONDS, lambda: CommandOutcome(status="Success")
        capture_id = command.comment.removeprefix(COMMENT_PREFIX)
        self._receive_grant(capture_id, command)
        tags = {tag["key"]: tag["value"] for tag in command.instance.get_tags()}
        duration = float(tags.get(TAG_CAPTURE_SECONDS, 60))
        started = now()
        # When the last file and the manifest go up, whenever the workflow comes to look.
        uploaded_at = started + timedelta(seconds=duration + UPLOAD_SECONDS)

        def finish() -> CommandOutcome:
            if self.outcome == "Failed":
                return CommandOutcome(
                    status="Failed", response_code=1, stderr="tcpdump: ens5: No such device exists (simulated)"
                )
            try:
                if self.outcome == "disk_limit":
                    self._deliver(command, capture_id, started, uploaded_at, status="disk_limit", exit_code=4)
                    return CommandOutcome(
                        status="Failed", response_code=4, stderr="stopped: free disk below the reserve"
                    )
                self._deliver(command, capture_id, started, uploaded_at)
            except AwsError as refused:
                # What the script does when S3 refuses its uploads: files and manifest stay on disk.
                return CommandOutcome(
                    status="Failed",
                    response_code=CaptureExit.MANIFEST_FAILED,
                    stderr=f"upload refused by S3: {refused.code}: {refused.message}; manifest upload failed",
                )
            return CommandOutcome(status="Success", stdout=SIMULATION_NOTICE)

        return duration + UPLOAD_SECONDS, finish

    def _receive_grant(self, capture_id: str, command: SentCommand) -> None:
        """The grant file the command writes (see mirrorcap.collector.command.render_run_command)."""
        commands = command.parameters["commands"]
        start = next(i for i, line in enumerate(commands) if line.startswith(f"cat > {grant_path(capture_id)}.new "))
        lines = commands[start + 1 : commands.index(HEREDOC_END, start)]
        self._grants.setdefault(capture_id, []).append((now(), dict(line.split("=", 1) for line in lines)))

    def _upload(self, account_id: str, capture_id: str, key: str, body: bytes, content_type: str, at: datetime) -> None:
        """POST one object at virtual time `at` with the grant the collector then had, as capture.sh's
        s3_post does."""
        received = self._grants[capture_id]  # in the order the commands arrived
        received_at, grant = ([item for item in received if item[0] <= at] or received[:1])[-1]
        fields = {name: value for name, value in grant.items() if name != "url"}
        fields |= {"key": key, "Content-Type": content_type, "x-amz-meta-sha256": "", "x-amz-meta-packets": "0"}
        bucket = _bucket_of(fields["policy"])
        # botocore dates the policy by the real clock, the emulation runs on a virtual one: S3 judges the
        # grant by its age on the virtual clock.
        signed_at = datetime.strptime(fields["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        check_post(account_id, bucket, fields, len(body), now=signed_at + (at - received_at))
        s3_backends[account_id]["aws"].put_object(bucket, key, body)

    def _deliver(
        self,
        command: SentCommand,
        capture_id: str,
        started: datetime,
        uploaded_at: datetime,
        status: CaptureStatus = "complete",
        exit_code: int = 0,
    ) -> None:
        if not self.sample.is_file():
            raise FileNotFoundError(f"the offline sample capture is missing: {self.sample}")
        prefix = capture_prefix(capture_id)
        # The capture script's key layout: <capture-id>-<time slot start>-<size rotation>.pcap
        key = f"{prefix}{capture_id}-{started:%Y%m%dT%H%M%SZ}-00000.pcap"
        self._upload(
            command.account_id, capture_id, key, self.sample.read_bytes(), "application/vnd.tcpdump.pcap", uploaded_at
        )
        pcap = summarize_pcap_file(self.sample, key)
        manifest = CaptureManifest(
            capture_id=capture_id,
            status=status,
            interface="ens5",
            vni=vni_for(capture_id),
            started_at=started,
            ended_at=uploaded_at - timedelta(seconds=UPLOAD_SECONDS),
            files=[pcap],
            packets_captured=pcap.packets,
            packets_dropped_by_kernel=0,
            exit_code=exit_code,
        )
        body = manifest.model_dump_json(indent=2).encode()
        self._upload(command.account_id, capture_id, f"{prefix}{MANIFEST_NAME}", body, "application/json", uploaded_at)


def _bucket_of(policy: str) -> str:
    conditions = json.loads(base64.b64decode(policy))["conditions"]
    return next(c["bucket"] for c in conditions if isinstance(c, dict) and "bucket" in c)
