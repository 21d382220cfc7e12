"""The capture script, for real: the exact commands SSM would run, with real tcpdump, in network namespaces
that reproduce a mirror session (mirrorcap_tools.netns), uploading to S3 served by moto on the collector's
loopback. Needs root; skips with the reason where the lab cannot be built."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mirrorcap.collector.command import (
    CaptureScriptSpec,
    max_object_bytes,
    render_renewal_command,
    render_run_command,
    render_stop_command,
)
from mirrorcap.collector.manifest import MANIFEST_NAME, CaptureExit, CaptureManifest, summarize_pcap_file
from mirrorcap_tools import netns
from scapy.layers.dns import DNS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

LAB_UNAVAILABLE = netns.unavailable_reason()
pytestmark = [
    pytest.mark.capture,
    pytest.mark.skipif(LAB_UNAVAILABLE is not None, reason=f"capture lab unavailable: {LAB_UNAVAILABLE}"),
]

VNI = 4242
DECOY_VNI = 777  # a second session to the same collector: the capture must leave its traffic out
BUCKET = "mirrorcap-lab-captures"
SITE_NAME = "web.mirrorcap.test"
BLOB = bytes(range(256)) * 1200  # 300 KB: a few GETs fill a 1 MB file
BLOB_SHA256 = hashlib.sha256(BLOB).hexdigest()
LOG_NAME = "capture.log"
COLLECTOR_IFNAME = "enX7"  # neither eth0 nor ens5: the script must find it by the default route


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("capture-lab")
    (root / "site").mkdir()
    (root / "site" / "blob.bin").write_bytes(BLOB)
    return root


@pytest.fixture(scope="module")
def lab(lab_dir):
    with netns.mirror_lab(VNI, decoy_vni=DECOY_VNI, collector_ifname=COLLECTOR_IFNAME) as lab:
        with netns.services(lab, lab_dir / "site", SITE_NAME, lab_dir / "services.log"):
            yield lab


@pytest.fixture(scope="module")
def s3(lab, lab_dir):
    with netns.lab_s3(lab, BUCKET, lab_dir / "moto.log") as s3:
        yield s3


_run_counter = iter(range(1000))


def make_spec(**overrides) -> CaptureScriptSpec:
    capture_id = f"mc-lab-{time.strftime('%H%M%S')}-{next(_run_counter):03d}"
    values = {
        "capture_id": capture_id,
        "bucket": BUCKET,
        "key_prefix": f"captures/{capture_id}/",
        "duration_seconds": 60,
        "vni": VNI,
        "rotate_megabytes": 1,
    }
    return CaptureScriptSpec(**{**values, **overrides})


def run_command(spec: CaptureScriptSpec) -> list[str]:
    """The capture command as StartCapture renders it, with an upload grant for the lab's S3."""
    return render_run_command(spec, netns.lab_grant(spec.bucket, spec.key_prefix, max_object_bytes(spec)))


def start(lab, spec: CaptureScriptSpec, disk: Path) -> netns.CollectorRun:
    run = netns.CollectorRun(lab, run_command(spec), disk, spec.capture_id)
    run.wait_listening()
    return run


def delivered(s3, spec: CaptureScriptSpec, dest: Path) -> tuple[CaptureManifest | None, dict]:
    objects = s3.download(spec.key_prefix, dest)
    manifest_object = objects.pop(f"{spec.key_prefix}{MANIFEST_NAME}", None)
    objects.pop(f"{spec.key_prefix}{LOG_NAME}", None)  # uploaded after the manifest, best effort
    manifest = CaptureManifest.model_validate_json(manifest_object.path.read_bytes()) if manifest_object else None
    return manifest, objects


def check_objects_are_whole(objects: dict) -> None:
    """Every pcap in S3 is complete, and its checksum, packet count and content type hold."""
    for key, obj in objects.items():
        summary = summarize_pcap_file(obj.path, key)
        assert summary.bytes == obj.size
        assert obj.metadata["sha256"] == summary.sha256
        assert int(obj.metadata["packets"]) == summary.packets
        assert obj.content_type == "application/vnd.tcpdump.pcap"


def check_manifest_matches_objects(manifest: CaptureManifest, objects: dict) -> None:
    assert sorted(f.key for f in manifest.files) == sorted(objects)
    for file in manifest.files:
        assert file == summarize_pcap_file(objects[file.key].path, file.key)
    assert manifest.packets_captured == sum(f.packets for f in manifest.files)
    assert manifest.not_delivered == []


def read_frames(objects: dict) -> list[Ether]:
    frames = []
    for key in sorted(objects):
        frames.extend(rdpcap(str(objects[key].path)))
    return frames


def inner_frames(frames: list[Ether]) -> list[Ether]:
    """Check every captured packet is this session's VXLAN to the collector; return the mirrored frames."""
    inner = []
    for frame in frames:
        assert frame[IP].src == netns.MIRROR_SOURCE_IP and frame[IP].dst == netns.COLLECTOR_IP
        assert frame[UDP].dport == netns.VXLAN_PORT
        assert frame[VXLAN].vni == VNI
        inner.append(frame[VXLAN].payload)
    return inner


def http_bodies(inner: list[Ether]) -> list[bytes]:
    """Reassemble each HTTP response the server sent (by TCP sequence number) and return the bodies."""
    streams: dict[int, dict[int, bytes]] = defaultdict(dict)
    for frame in inner:
        if TCP in frame and frame[TCP].sport == netns.HTTP_PORT and frame[IP].src == netns.SERVER_IP:
            payload = bytes(frame[TCP].payload)
            if payload:
                streams[frame[TCP].dport][frame[TCP].seq] = payload
    bodies = []
    for segments in streams.values():
        data = b"".join(segments[seq] for seq in sorted(segments))
        bodies.append(data.split(b"\r\n\r\n", 1)[1])
    return bodies


def http_requests(inner: list[Ether]) -> list[bytes]:
    return [
        bytes(frame[TCP].payload)
        for frame in inner
        if TCP in frame and frame[TCP].dport == netns.HTTP_PORT and bytes(frame[TCP].payload).startswith(b"GET ")
    ]


def fetch_in_background(lab, times: int) -> threading.Thread:
    thread = threading.Thread(target=netns.http_get, args=(lab, "/blob.bin", SITE_NAME, times), daemon=True)
    thread.start()
    return thread


def test_a_whole_window_delivers_every_file_and_a_manifest_that_matches(lab, s3, tmp_path):
    spec = make_spec(duration_seconds=8, rotate_seconds=5)
    began = time.monotonic()
    run = start(lab, spec, tmp_path / "disk")
    assert netns.dns_query(lab, SITE_NAME) == netns.SERVER_IP
    fetched = netns.http_get(lab, "/blob.bin", SITE_NAME, times=12, interval=0.45)
    assert run.wait(timeout=120) == CaptureExit.COMPLETE, run.output()
    elapsed = time.monotonic() - began

    manifest, objects = delivered(s3, spec, tmp_path / "s3")
    assert manifest is not None, run.output()
    assert manifest.status == "complete" and manifest.exit_code == 0 and manifest.error is None
    assert manifest.capture_id == spec.capture_id and manifest.vni == VNI
    assert manifest.interface == COLLECTOR_IFNAME
    assert manifest.packets_dropped_by_kernel == 0
    # Every packet libpcap received was written: the drain after the window left none in its buffer.
    assert manifest.packets_received_by_filter == manifest.packets_captured
    assert manifest.bpf_filter == f"udp dst port 4789 and udp[12:4] >> 8 = {VNI}"
    assert 8 <= (manifest.ended_at - manifest.started_at).total_seconds() <= elapsed + 1
    check_objects_are_whole(objects)
    check_manifest_matches_objects(manifest, objects)

    # Rotated both ways: by size (several files in one time slot) and by time (several time slots).
    names = [key.rsplit("/", 1)[1].removesuffix(".pcap") for key in objects]
    assert any(not name.endswith("-00000") for name in names), names
    assert len({name.split("-")[-2] for name in names}) >= 2, names

    # The mirrored traffic itself: the DNS lookup and every HTTP exchange, whole, and nothing else.
    inner = inner_frames(read_frames(objects))
    dns = [frame[DNS] for frame in inner if DNS in frame]
    assert [d.qr for d in dns] == [0, 1]
    assert dns[1].an[0].rdata == netns.SERVER_IP
    assert len(http_requests(inner)) == len(fetched) == 12
    assert all(f"Host: {SITE_NAME}".encode() in request for request in http_requests(inner))
    bodies = http_bodies(inner)
    assert len(bodies) == 12
    assert all(hashlib.sha256(body).hexdigest() == BLOB_SHA256 for body in bodies)
    assert all(item["sha256"] == BLOB_SHA256 for item in fetched)

    # Nothing left behind on the collector's disk but the logs and the manifest; the whole log is in S3.
    assert not list(run.work_dir.glob("*.pcap*"))
    log = s3.download(f"{spec.key_prefix}{LOG_NAME}", tmp_path / "log")[f"{spec.key_prefix}{LOG_NAME}"]
    assert f"manifest: s3://{BUCKET}/{spec.key_prefix}{MANIFEST_NAME}" in log.path.read_text()


def test_a_stop_before_the_window_ends_closes_and_delivers_the_last_file(lab, s3, tmp_path):
    spec = make_spec(duration_seconds=300)
    run = start(lab, spec, tmp_path / "disk")
    fetched = netns.http_get(lab, "/blob.bin", SITE_NAME, times=2)
    began = time.monotonic()
    stop = run.run_commands(render_stop_command(spec))
    assert stop.returncode == 0 and "capture stopped" in stop.stdout, stop.stdout + stop.stderr
    assert run.wait(timeout=60) == CaptureExit.STOPPED_EARLY, run.output()
    assert time.monotonic() - began < 30

    manifest, objects = delivered(s3, spec, tmp_path / "s3")
    assert manifest is not None, run.output()
    assert manifest.status == "stopped_early" and manifest.exit_code == CaptureExit.STOPPED_EARLY
    assert manifest.packets_received_by_filter == manifest.packets_captured
    check_objects_are_whole(objects)
    check_manifest_matches_objects(manifest, objects)
    # The last file was never closed by a rotation: the script closed it (tcpdump on SIGINT) and uploaded it.
    bodies = http_bodies(inner_frames(read_frames(objects)))
    assert len(bodies) == len(fetched) == 2
    assert all(hashlib.sha256(body).hexdigest() == BLOB_SHA256 for body in bodies)


def test_a_collector_killed_mid_run_has_already_delivered_every_closed_file(lab, s3, tmp_path):
    spec = make_spec(duration_seconds=300)
    run = start(lab, spec, tmp_path / "disk")
    netns.http_get(lab, "/blob.bin", SITE_NAME, times=12)  # about 3.7 MB: three or more closed files
    # Closed files go to S3 while the capture runs; wait for the hooks to catch up with tcpdump.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(run.work_dir.glob("*.pcap*"))) > 1:
        time.sleep(0.1)
    run.kill()  # every process of the capture at once, as when the instance dies

    manifest, objects = delivered(s3, spec, tmp_path / "s3")
    assert manifest is None  # the script never got to its end
    check_objects_are_whole(objects)
    recorded = {line.split("\t")[0] for line in (run.work_dir / "delivered.tsv").read_text().splitlines()}
    assert recorded == set(objects)
    # All that is lost is the file tcpdump had open; every file it had closed is in S3.
    left = [local_key(spec, path) for path in run.work_dir.glob("*.pcap*")]
    assert len(left) == 1
    closed = sorted(objects)
    assert len(closed) >= 3
    assert [key_index(key) for key in [*closed, *left]] == list(range(len(closed) + 1))


def test_a_renewed_grant_takes_over_from_one_s3_refuses(lab, s3, tmp_path):
    """The script reads the grant for every upload: a renewal (RenewUploadGrant's command) mid-capture
    makes the next uploads, and the retry of those that failed, go through."""
    spec = make_spec(duration_seconds=300)
    refused = netns.lab_grant("mirrorcap-lab-no-such-bucket", spec.key_prefix, max_object_bytes(spec))
    run = netns.CollectorRun(lab, render_run_command(spec, refused), tmp_path / "disk", spec.capture_id)
    run.wait_listening()
    netns.http_get(lab, "/blob.bin", SITE_NAME, times=6)  # about 1.8 MB: at least one closed file
    log = run.work_dir / LOG_NAME
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "failed; kept on disk" not in log.read_text():
        time.sleep(0.1)
    assert "NoSuchBucket" in log.read_text()

    renewal = render_renewal_command(
        spec.capture_id, netns.lab_grant(spec.bucket, spec.key_prefix, max_object_bytes(spec))
    )
    assert run.run_commands(renewal).returncode == 0
    netns.http_get(lab, "/blob.bin", SITE_NAME, times=6)
    assert run.run_commands(render_stop_command(spec)).returncode == 0
    assert run.wait(timeout=60) == CaptureExit.STOPPED_EARLY, run.output()

    manifest, objects = delivered(s3, spec, tmp_path / "s3")
    assert manifest is not None and manifest.not_delivered == []
    check_objects_are_whole(objects)
    check_manifest_matches_objects(manifest, objects)
    assert len(http_bodies(inner_frames(read_frames(objects)))) == 12


def key_index(key: str) -> int:
    return int(key.rsplit("-", 1)[1].removesuffix(".pcap"))


def local_key(spec: CaptureScriptSpec, path: Path) -> str:
    """The key capture.sh gives a local file: <start>.pcap<N> -> <capture-id>-<start>-<NNNNN>.pcap."""
    stamp, index = path.name.split(".pcap")
    return f"{spec.key_prefix}{spec.capture_id}-{stamp}-{int(index or 0):05d}.pcap"


def test_the_disk_guard_stops_the_capture_before_the_disk_fills(lab, s3, tmp_path):
    spec = make_spec(duration_seconds=120)
    reserve_mib = 256 + 2 * spec.rotate_megabytes  # capture.sh: RESERVE_FLOOR_MB + 2 files
    disk = tmp_path / "disk"
    with small_disk(disk, size_mib=320, free_mib=reserve_mib + spec.rotate_megabytes + 0.2):
        run = start(lab, spec, disk)
        traffic = fetch_in_background(lab, times=30)
        assert run.wait(timeout=90) == CaptureExit.DISK_LIMIT, run.output()
        traffic.join(timeout=60)
        manifest, objects = delivered(s3, spec, tmp_path / "s3")
        assert manifest is not None, run.output()
        assert manifest.status == "disk_limit" and manifest.exit_code == CaptureExit.DISK_LIMIT
        assert "disk guard" in manifest.error
        assert (manifest.ended_at - manifest.started_at).total_seconds() < 60
        check_objects_are_whole(objects)
        check_manifest_matches_objects(manifest, objects)
        assert objects


def test_a_collector_without_disk_to_spare_does_not_start(lab, s3, tmp_path):
    spec = make_spec(duration_seconds=120)
    disk = tmp_path / "disk"
    with small_disk(disk, size_mib=300, free_mib=200):
        run = netns.CollectorRun(lab, run_command(spec), disk, spec.capture_id)
        assert run.wait(timeout=60) == CaptureExit.DISK_LIMIT, run.output()
        manifest, objects = delivered(s3, spec, tmp_path / "s3")
    assert manifest is not None and manifest.status == "disk_limit"
    assert "need 259 MB to start" in manifest.error
    assert manifest.files == [] and objects == {}


def test_uploads_that_fail_keep_the_files_and_say_so(lab, s3, tmp_path):
    spec = make_spec(duration_seconds=3, bucket="mirrorcap-lab-no-such-bucket")
    run = start(lab, spec, tmp_path / "disk")
    netns.http_get(lab, "/blob.bin", SITE_NAME, times=1)
    # Neither the pcap nor the manifest could be uploaded: the manifest on disk says what happened.
    assert run.wait(timeout=120) == CaptureExit.MANIFEST_FAILED, run.output()
    manifest = CaptureManifest.model_validate_json((run.work_dir / MANIFEST_NAME).read_bytes())
    assert manifest.status == "failed" and manifest.exit_code == CaptureExit.UPLOAD_FAILED
    assert manifest.files == []
    left = list(run.work_dir.glob("*.pcap*"))
    assert len(manifest.not_delivered) == len(left) >= 1
    assert "not delivered" in manifest.error
    assert "NoSuchBucket" in (run.work_dir / "capture.log").read_text()


def test_a_collector_without_a_default_route_fails_clearly(lab_dir, tmp_path):
    spec = make_spec(duration_seconds=5)
    with netns.mirror_lab(VNI, default_route=False) as bare, netns.lab_s3(bare, BUCKET, lab_dir / "moto2.log") as s3:
        run = netns.CollectorRun(bare, run_command(spec), tmp_path / "disk", spec.capture_id)
        assert run.wait(timeout=60) == CaptureExit.CAPTURE_FAILED, run.output()
        manifest, objects = delivered(s3, spec, tmp_path / "s3")
    assert manifest is not None and manifest.status == "failed"
    assert manifest.interface is None and objects == {}
    assert "no IPv4 default route" in manifest.error
    assert "no IPv4 default route" in run.stderr_path.read_text()


def test_the_same_capture_never_runs_twice_on_one_collector(lab, s3, tmp_path):
    spec = make_spec(duration_seconds=1)
    disk = tmp_path / "disk"
    first = netns.CollectorRun(lab, run_command(spec), disk, spec.capture_id)
    assert first.wait(timeout=60) == CaptureExit.COMPLETE, first.output()
    manifest_before = json.loads((first.work_dir / MANIFEST_NAME).read_text())
    second = netns.CollectorRun(lab, run_command(spec), disk, spec.capture_id)
    assert second.wait(timeout=60) == CaptureExit.BAD_ARGUMENTS
    assert "has run on this host before" in second.stderr_path.read_text()
    assert json.loads((first.work_dir / MANIFEST_NAME).read_text()) == manifest_before


@contextmanager
def small_disk(path: Path, size_mib: int, free_mib: float) -> Iterator[Path]:
    """A size-limited tmpfs at `path`, filled so that `free_mib` stays free: the collector's disk, nearly full."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(path)], check=True)
    try:
        stats = os.statvfs(path)
        filler = stats.f_bavail * stats.f_frsize - int(free_mib * 1024 * 1024)
        (path / "filler").write_bytes(b"\0" * filler)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)
