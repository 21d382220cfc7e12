"""Render the capture script (capture.sh) into the `commands` of an AWS-RunShellScript command.

The script text is fixed; everything that varies per capture reaches it as arguments, each validated
here (and again by the script) and shell-quoted. The rendered commands are plain POSIX sh: the agent runs
them with `sh`. They write the capture's upload grant (see grant.py) and the script to the collector's
disk and exec bash on the script, so the script's exit code becomes the command's ResponseCode.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from functools import cache
from importlib.resources import files

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mirrorcap.collector.grant import UploadGrant, grant_lines

DATA_ROOT = "/var/lib/mirrorcap"  # capture.sh's DATA_ROOT: the root volume, not /tmp (RAM on AL2023)
HEREDOC_END = "MIRRORCAP_CAPTURE_SH_END"

# From the agent starting the script to tcpdump listening; how long tcpdump runs past the window so that
# libpcap's last buffer block is written; tcpdump's grace to close its last file (all as in capture.sh).
STARTUP_SECONDS = 60
DRAIN_SECONDS = 2
STOP_GRACE_SECONDS = 15
MANIFEST_SECONDS = 60  # capture.sh keeps this much of the finish budget for the manifest

# Outer Ethernet + IPv4 + UDP + VXLAN (50), inner Ethernet (14), IPv6 (40) and TCP with options (60):
# the smallest snapshot that still holds every inner header.
MIN_SNAPLEN = 164
MAX_SNAPLEN = 65535
MAX_ROTATE_MEGABYTES = 1000
MIN_ROTATE_SECONDS, MAX_ROTATE_SECONDS = 5, 3600

_CAPTURE_ID = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# S3 general purpose bucket naming rules beyond the character set.
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


class CaptureScriptSpec(BaseModel):
    """Everything the capture script is told. Strict: a value of the wrong type is refused, not coerced."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    capture_id: str
    bucket: str
    key_prefix: str
    duration_seconds: int = Field(ge=1, le=86400)
    vni: int = Field(ge=1, le=16_777_215)
    snaplen: int = 0  # 0: whole packets
    rotate_megabytes: int = Field(default=100, ge=1, le=MAX_ROTATE_MEGABYTES)
    # A new file at least this often (when packets arrive), so a lost collector loses at most this much.
    rotate_seconds: int = Field(default=300, ge=MIN_ROTATE_SECONDS, le=MAX_ROTATE_SECONDS)

    @field_validator("capture_id")
    @classmethod
    def _capture_id(cls, value: str) -> str:
        if not _CAPTURE_ID.fullmatch(value):
            raise ValueError("must be 3-63 characters: lowercase letters, digits and '-', not starting with '-'")
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not _BUCKET.fullmatch(value):
            raise ValueError("must be 3-63 characters: lowercase letters, digits, '.' and '-'")
        if ".." in value or ".-" in value or "-." in value:
            raise ValueError("must not have '..', '.-' or '-.'")
        if value.startswith(_BUCKET_RESERVED_PREFIXES) or value.endswith(_BUCKET_RESERVED_SUFFIXES):
            raise ValueError("uses a prefix or suffix S3 reserves")
        if _is_ipv4(value):
            raise ValueError("must not look like an IP address")
        return value

    @field_validator("snaplen")
    @classmethod
    def _snaplen(cls, value: int) -> int:
        if value != 0 and not MIN_SNAPLEN <= value <= MAX_SNAPLEN:
            raise ValueError(f"must be 0 (whole packets) or {MIN_SNAPLEN}..{MAX_SNAPLEN}")
        return value

    @model_validator(mode="after")
    def _prefix_is_the_capture_s(self) -> CaptureScriptSpec:
        if self.key_prefix != f"captures/{self.capture_id}/":
            raise ValueError(f"key_prefix must be captures/{self.capture_id}/")
        return self


def _is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def max_object_bytes(spec: CaptureScriptSpec) -> int:
    """The largest file the script uploads (the limit its upload grant sets): tcpdump -C counts millions
    of bytes and rotates after the packet that crosses the size; 2 MiB covers that packet and the log."""
    return spec.rotate_megabytes * 1_000_000 + 2 * 1024 * 1024


def upload_timeout_seconds(spec: CaptureScriptSpec) -> int:
    """The most one file's upload may take: at least 0.5 MB/s to S3 (capture.sh computes the same)."""
    return 60 + 2 * spec.rotate_megabytes


def finish_seconds(spec: CaptureScriptSpec) -> int:
    """How long the script may take after the window: an upload still in flight, the last file, the manifest."""
    return 2 * upload_timeout_seconds(spec) + MANIFEST_SECONDS


def execution_timeout_seconds(spec: CaptureScriptSpec) -> int:
    """SendCommand's executionTimeout: the window plus start-up, drain, tcpdump's grace and the finish
    budget (at most about 25 hours, within SSM's 48-hour maximum)."""
    return spec.duration_seconds + STARTUP_SECONDS + DRAIN_SECONDS + STOP_GRACE_SECONDS + finish_seconds(spec)


def script_path(capture_id: str) -> str:
    return f"{DATA_ROOT}/capture-{capture_id}.sh"


def grant_path(capture_id: str) -> str:
    """Beside the work directory, not in it: the script refuses to start if that already exists."""
    return f"{DATA_ROOT}/{capture_id}.grant"


def work_dir(capture_id: str) -> str:
    """Where the script keeps its pcaps until they are uploaded, its logs and its manifest."""
    return f"{DATA_ROOT}/{capture_id}"


def render_run_command(spec: CaptureScriptSpec, grant: UploadGrant) -> list[str]:
    """The `commands` parameter of AWS-RunShellScript (one line per item)."""
    path = script_path(spec.capture_id)
    argv = [
        "/bin/bash", path,
        "--capture-id", spec.capture_id,
        "--bucket", spec.bucket,
        "--key-prefix", spec.key_prefix,
        "--duration", str(spec.duration_seconds),
        "--vni", str(spec.vni),
        "--snaplen", str(spec.snaplen),
        "--rotate-megabytes", str(spec.rotate_megabytes),
        "--rotate-seconds", str(spec.rotate_seconds),
        "--finish-seconds", str(finish_seconds(spec)),
    ]  # fmt: skip
    return [
        "set -eu",
        "umask 077",
        f"mkdir -p {shlex.quote(DATA_ROOT)}",
        *_write_grant(spec.capture_id, grant),
        # Quoted delimiter: the shell expands nothing inside the script text.
        f"cat > {shlex.quote(path)} <<'{HEREDOC_END}'",
        *_script_lines(),
        HEREDOC_END,
        f"exec {shlex.join(argv)}",
    ]


def render_renewal_command(capture_id: str, grant: UploadGrant) -> list[str]:
    """The `commands` of AWS-RunShellScript that hand a running capture its next upload grant."""
    if not _CAPTURE_ID.fullmatch(capture_id):
        raise ValueError(f"invalid capture id {capture_id!r}")
    return ["set -eu", "umask 077", *_write_grant(capture_id, grant)]


def _write_grant(capture_id: str, grant: UploadGrant) -> list[str]:
    """Replace the grant file atomically: the script may be reading it for an upload."""
    path = grant_path(capture_id)
    return [
        f"cat > {shlex.quote(path + '.new')} <<'{HEREDOC_END}'",
        *grant_lines(grant),
        HEREDOC_END,
        f"mv -f {shlex.quote(path + '.new')} {shlex.quote(path)}",
    ]


def render_stop_command(spec: CaptureScriptSpec, wait_seconds: int = 600) -> list[str]:
    """Commands that stop a running capture early (SIGTERM to the script) and wait until it has delivered
    the last file and the manifest (it removes its pid file last). Succeeds also when no capture runs."""
    pid_file = shlex.quote(f"{work_dir(spec.capture_id)}/capture.pid")
    return [
        "set -u",
        f"pid=$(cat {pid_file} 2>/dev/null) || {{ echo 'no capture running'; exit 0; }}",
        'kill -TERM "$pid" 2>/dev/null || { echo "no capture running"; exit 0; }',
        f'waited=0; while [ -e {pid_file} ] && kill -0 "$pid" 2>/dev/null && [ "$waited" -lt {int(wait_seconds)} ]; '
        "do sleep 1; waited=$((waited + 1)); done",
        f'if [ -e {pid_file} ] && kill -0 "$pid" 2>/dev/null; then echo "capture still finishing"; exit 1; fi',
        'echo "capture stopped"',
    ]


@cache
def _script_lines() -> tuple[str, ...]:
    text = files(__package__).joinpath("capture.sh").read_text(encoding="utf-8")
    lines = tuple(text.splitlines())
    if HEREDOC_END in lines:
        raise RuntimeError(f"capture.sh contains the heredoc delimiter {HEREDOC_END}")
    if "{{" in text:
        raise RuntimeError("capture.sh contains '{{', which SSM would read as a parameter reference")
    return lines
