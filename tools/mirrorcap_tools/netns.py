"""A mirror session in Linux network namespaces, for running the real capture script against real traffic.

    source (10.77.1.1) ── app0 ─── app0 ── server (10.77.1.2): HTTP on 80, DNS on 53
       │ tc mirred: every frame in and out of the source's app0 goes into a vxlan device (one VNI)
       └── mir0 (10.77.2.1) ── UDP 4789 ──> collector <ifname> (10.77.2.2, default route) + S3 on its loopback

That is what a Traffic Mirroring target receives: the source's frames, VXLAN-encapsulated on UDP 4789
with the session's VNI, on the collector's primary interface. A decoy session (another VNI) can mirror
the same frames to the same collector, as a second session to one target would. S3 is moto in server
mode on the collector's loopback, so the script's uploads never leave the namespace.

The namespaces have no link to the host's network: nothing the lab sends can leave it. Used by
tests/capture, scripts/make-sample-capture.py and bench/capture_loss.py; needs root, iproute2, ethtool
and tcpdump. The helpers that must run inside a namespace are this module's command line
(`python -m mirrorcap_tools.netns ...`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import boto3
from botocore.config import Config
from mirrorcap.collector.grant import UploadGrant, grant_from_post, post_request

SOURCE_IP, SERVER_IP = "10.77.1.1", "10.77.1.2"
MIRROR_SOURCE_IP, COLLECTOR_IP = "10.77.2.1", "10.77.2.2"
HTTP_PORT, DNS_PORT, S3_PORT = 80, 53, 4566
VXLAN_PORT = 4789
# The collector's side: jumbo frames as on EC2, so an encapsulated full-size frame is never fragmented.
COLLECTOR_MTU = 9001
REGION = "us-east-1"
REQUIRED_TOOLS = ("ip", "tc", "ethtool", "tcpdump", "timeout", "flock", "nsenter", "curl")

# Credentials and endpoint for anything in the lab that talks to its S3: never the host's own config.
LAB_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "mirrorcap-lab",
    "AWS_SECRET_ACCESS_KEY": "mirrorcap-lab",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ENDPOINT_URL": f"http://127.0.0.1:{S3_PORT}",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def venv_bin() -> Path:
    """The running interpreter's bin directory: moto_server, which the lab uses for S3, is installed there."""
    return Path(sys.executable).parent


def lab_env(**extra: str) -> dict[str, str]:
    path = f"{venv_bin()}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    return {"PATH": path, "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/root"), **LAB_AWS_ENV, **extra}


def unavailable_reason() -> str | None:
    """Why the lab cannot run here, or None if it can."""
    if sys.platform != "linux":
        return "needs Linux network namespaces"
    if os.geteuid() != 0:
        return "needs root (network namespaces, tc, tcpdump)"
    for tool in REQUIRED_TOOLS:
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/install-system-packages.sh installs it)"
    if not (venv_bin() / "moto_server").exists():
        return f"moto_server is not installed in {venv_bin()} (pip install -e '.[dev]')"
    probe = f"mcprobe-{os.getpid()}-{secrets.token_hex(2)}"
    try:
        _ip(f"netns add {probe}")
        _ip(f"-n {probe} link add vx0 type vxlan id 1 dstport {VXLAN_PORT} dev lo")
        _ip(f"-n {probe} link add a0 type veth peer name a1")
    except subprocess.CalledProcessError as exc:
        return f"cannot create network namespaces with veth and vxlan devices: {exc.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(command: str) -> None:
    """`ip <command>`; every word the lab puts in a command is free of spaces and quotes."""
    subprocess.run(["ip", *command.split()], check=True, capture_output=True, text=True)


def _tc(command: str) -> None:
    subprocess.run(["tc", *command.split()], check=True, capture_output=True, text=True)


def in_ns(ns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def helper(*args: str) -> list[str]:
    """This module's command line, for a helper that runs inside a namespace."""
    return [sys.executable, "-m", "mirrorcap_tools.netns", *args]


@dataclass(frozen=True)
class Lab:
    tag: str
    vni: int
    collector_ifname: str

    @property
    def source(self) -> str:
        return f"{self.tag}-src"

    @property
    def server(self) -> str:
        return f"{self.tag}-srv"

    @property
    def collector(self) -> str:
        return f"{self.tag}-col"

    @property
    def namespaces(self) -> tuple[str, str, str]:
        return self.source, self.server, self.collector

    def run(self, ns: str, argv: Sequence[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("env", lab_env())
        return subprocess.run(in_ns(ns, argv), check=True, capture_output=True, text=True, timeout=timeout, **kwargs)

    def popen(self, ns: str, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault("env", lab_env())
        return subprocess.Popen(in_ns(ns, argv), **kwargs)

    def link_mac(self, ns: str, ifname: str) -> str:
        out = subprocess.run(["ip", "-n", ns, "-j", "link", "show", ifname], check=True, capture_output=True, text=True)
        return json.loads(out.stdout)[0]["address"]

    def rx_packets(self, ns: str, ifname: str) -> int:
        out = subprocess.run(
            ["ip", "-n", ns, "-j", "-s", "link", "show", ifname], check=True, capture_output=True, text=True
        )
        return json.loads(out.stdout)[0]["stats64"]["rx"]["packets"]


@contextmanager
def mirror_lab(
    vni: int, *, decoy_vni: int | None = None, collector_ifname: str = "ens5", default_route: bool = True
) -> Iterator[Lab]:
    """Build the namespaces (unique names, so parallel runs do not collide); always tear them down."""
    lab = Lab(tag=f"mc{os.getpid() % 100000}{secrets.token_hex(2)}", vni=vni, collector_ifname=collector_ifname)
    try:
        for ns in lab.namespaces:
            _ip(f"netns add {ns}")
            # IPv4 only: no neighbour discovery or MLD chatter from the links themselves in the capture.
            subprocess.run(in_ns(ns, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]), check=True)
            _ip(f"-n {ns} link set lo up")
        _wire_source_and_server(lab)
        _wire_collector(lab, default_route)
        _mirror(lab, [vni] if decoy_vni is None else [vni, decoy_vni])
        yield lab
    finally:
        for ns in lab.namespaces:
            _destroy_namespace(ns)


def _wire_source_and_server(lab: Lab) -> None:
    _ip(f"-n {lab.source} link add app0 type veth peer name app0 netns {lab.server}")
    for ns, address in ((lab.source, SOURCE_IP), (lab.server, SERVER_IP)):
        _ip(f"-n {ns} addr add {address}/24 dev app0")
        _ip(f"-n {ns} link set app0 up")
        # A NIC puts wire-sized frames on the wire; without this, veth hands 64 KB TSO super-frames to the
        # mirror and the collector would see packets no real mirror session ever sends.
        _no_offloads(ns, "app0")


def _wire_collector(lab: Lab, default_route: bool) -> None:
    _ip(f"-n {lab.source} link add mir0 type veth peer name {lab.collector_ifname} netns {lab.collector}")
    for ns, ifname, address in (
        (lab.source, "mir0", MIRROR_SOURCE_IP),
        (lab.collector, lab.collector_ifname, COLLECTOR_IP),
    ):
        _ip(f"-n {ns} link set {ifname} mtu {COLLECTOR_MTU}")
        _ip(f"-n {ns} addr add {address}/24 dev {ifname}")
        _ip(f"-n {ns} link set {ifname} up")
        _no_offloads(ns, ifname)
    if default_route:
        _ip(f"-n {lab.collector} route add default via {MIRROR_SOURCE_IP} dev {lab.collector_ifname}")


def _no_offloads(ns: str, ifname: str) -> None:
    argv = in_ns(ns, ["ethtool", "-K", ifname, "tso", "off", "gso", "off", "gro", "off"])
    subprocess.run(argv, check=True, capture_output=True, text=True)


def _mirror(lab: Lab, vnis: list[int]) -> None:
    """One mirror session per VNI: a vxlan device towards the collector, fed by tc mirred from app0 both ways."""
    devices = [f"vx{i}" for i in range(len(vnis))]
    for device, vni in zip(devices, vnis, strict=True):
        _ip(
            f"-n {lab.source} link add {device} type vxlan id {vni} remote {COLLECTOR_IP} local {MIRROR_SOURCE_IP}"
            f" dstport {VXLAN_PORT} dev mir0"
        )
        _ip(f"-n {lab.source} link set {device} mtu {COLLECTOR_MTU - 50} up")
    # One filter per direction carrying every session's action: tc stops at the first filter that matches.
    # u32 matching everything rather than matchall: kernels without cls_matchall have u32.
    mirrors = " ".join(f"action mirred egress mirror dev {device}" for device in devices)
    _tc(f"-n {lab.source} qdisc add dev app0 clsact")
    for direction in ("ingress", "egress"):
        _tc(f"-n {lab.source} filter add dev app0 {direction} protocol all u32 match u32 0 0 {mirrors}")


def _destroy_namespace(ns: str) -> None:
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# --- S3 on the collector's loopback ------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Object:
    key: str
    path: Path
    size: int
    metadata: dict[str, str]
    content_type: str


@dataclass(frozen=True)
class LabS3:
    lab: Lab
    bucket: str

    def download(self, prefix: str, dest: Path) -> dict[str, S3Object]:
        """Every object under prefix, copied to dest (the lab's S3 is only reachable from inside it)."""
        out = self.lab.run(self.lab.collector, helper("s3-download", self.bucket, prefix, str(dest)))
        return {
            item["key"]: S3Object(
                key=item["key"],
                path=Path(item["path"]),
                size=item["size"],
                metadata=item["metadata"],
                content_type=item["content_type"],
            )
            for item in json.loads(out.stdout)
        }


def lab_grant(bucket: str, key_prefix: str, max_object_bytes: int) -> UploadGrant:
    """An upload grant for the lab's S3, signed with the lab's keys, as the workflow mints one for S3.
    (moto does not check POST policies; mirrorcap_tools.emulation.s3_post does, offline.)"""
    s3 = boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=LAB_AWS_ENV["AWS_ENDPOINT_URL"],
        aws_access_key_id=LAB_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LAB_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4"),
    )
    return grant_from_post(
        s3.generate_presigned_post(Bucket=bucket, **post_request(key_prefix, max_object_bytes)), datetime.now(UTC)
    )


@contextmanager
def lab_s3(lab: Lab, bucket: str, log: Path) -> Iterator[LabS3]:
    with open(log, "ab") as sink:
        server = lab.popen(
            lab.collector,
            [str(venv_bin() / "moto_server"), "-H", "127.0.0.1", "-p", str(S3_PORT)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        lab.run(lab.collector, helper("s3-create-bucket", bucket), timeout=60)
        yield LabS3(lab, bucket)
    finally:
        server.kill()
        server.wait()


# --- running the capture commands as the SSM agent would ----------------------------------------------------


class CollectorRun:
    """The rendered AWS-RunShellScript commands, run with `sh` in the collector namespace.

    The collector's /var/lib is `data_dir` (a bind mount in a private mount namespace), so the script
    writes where it does on a collector while the test can look at what it left behind.
    """

    def __init__(self, lab: Lab, commands: Sequence[str], data_dir: Path, capture_id: str) -> None:
        self.lab = lab
        self.data_dir = data_dir
        self.work_dir = data_dir / "mirrorcap" / capture_id
        self.stdout_path = data_dir.parent / f"{capture_id}.stdout"
        self.stderr_path = data_dir.parent / f"{capture_id}.stderr"
        data_dir.mkdir(parents=True, exist_ok=True)
        script = write_commands(data_dir.parent / f"{capture_id}-commands.sh", commands)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = lab.popen(lab.collector, as_collector(data_dir, script), stdout=out, stderr=err)

    def wait_listening(self, timeout: float = 30) -> None:
        log = self.work_dir / "tcpdump.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if log.exists() and "listening on" in log.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"the capture ended before tcpdump listened:\n{self.output()}")
            time.sleep(0.1)
        raise TimeoutError(f"tcpdump not listening after {timeout}s:\n{self.output()}")

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(self.process.pid)
            self.process.wait()
            raise

    def run_commands(self, commands: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess:
        """Another command on the same collector (e.g. the stop command), seeing the same disk."""
        script = write_commands(self.data_dir.parent / f"commands-{secrets.token_hex(4)}.sh", commands)
        return subprocess.run(
            in_ns(self.lab.collector, as_collector(self.data_dir, script)),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=lab_env(),
        )

    def kill(self) -> None:
        """What a dying instance does to the capture: every process of it gets SIGKILL at once."""
        kill_tree(self.process.pid)
        self.process.wait()

    def output(self) -> str:
        return f"stdout:\n{self.stdout_path.read_text()}\nstderr:\n{self.stderr_path.read_text()}"


def write_commands(path: Path, commands: Sequence[str]) -> Path:
    """The agent's _script.sh: the `commands` parameter, one item per line."""
    path.write_text("\n".join(commands) + "\n")
    return path


def as_collector(data_dir: Path, script: Path) -> list[str]:
    """argv that runs `script` with `sh` (as the SSM agent does) with data_dir mounted at /var/lib."""
    mount_then_run = 'mount --bind "$1" /var/lib && cd / && exec sh "$2"'
    private_mounts = ["unshare", "--mount", "--propagation", "private"]
    return [*private_mounts, "sh", "-c", mount_then_run, "sh", str(data_dir), str(script)]


def kill_tree(pid: int) -> None:
    """SIGKILL pid and all its descendants, freezing them first so none can fork away in between."""
    frozen: set[int] = set()
    while True:
        tree = {pid, *_descendants(pid)} - frozen
        if not tree:
            break
        for member in tree:
            _signal(member, signal.SIGSTOP)
        frozen |= tree
    for member in frozen:
        _signal(member, signal.SIGKILL)


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# --- traffic -----------------------------------------------------------------------------------------------


@contextmanager
def services(lab: Lab, site: Path, dns_name: str, log: Path) -> Iterator[None]:
    """An HTTP server (serving `site`) and a DNS server (answering `dns_name` A SERVER_IP) on the server."""
    with ExitStack() as stack, open(log, "ab") as sink:
        for argv in (
            [sys.executable, "-m", "http.server", "--bind", SERVER_IP, "--directory", str(site), str(HTTP_PORT)],
            helper("dns-serve", dns_name),
        ):
            process = lab.popen(lab.server, argv, stdout=sink, stderr=subprocess.STDOUT)
            stack.callback(_stop, process)
        _wait_until_serving(lab)
        yield


def _stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()


def _wait_until_serving(lab: Lab, timeout: float = 15) -> None:
    wanted = {("tcp", HTTP_PORT), ("udp", DNS_PORT)}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listening = subprocess.run(in_ns(lab.server, ["ss", "-Hltun"]), capture_output=True, text=True).stdout
        serving = {(line.split()[0], int(line.split()[4].rsplit(":", 1)[1])) for line in listening.splitlines()}
        if wanted <= serving:
            return
        time.sleep(0.1)
    raise TimeoutError(f"the server is not serving HTTP on {HTTP_PORT} and DNS on {DNS_PORT} after {timeout}s")


def http_get(lab: Lab, path: str, host: str, times: int = 1, interval: float = 0.0) -> list[dict]:
    """GET http://SERVER_IP{path} from the source; returns status, size and SHA-256 of each body."""
    out = lab.run(lab.source, helper("http-get", path, host, str(times), str(interval)), timeout=60 + times * interval)
    return json.loads(out.stdout)


def dns_query(lab: Lab, name: str) -> str:
    """Resolve `name` (A) from the source against the server's DNS; returns the address."""
    return lab.run(lab.source, helper("dns-query", name)).stdout.strip()


# --- the in-namespace side: `python -m mirrorcap_tools.netns ...` -------------------------------------------


def _cmd_http_get(args: argparse.Namespace) -> None:
    import http.client

    results = []
    for i in range(args.times):
        if i and args.interval:
            time.sleep(args.interval)
        connection = http.client.HTTPConnection(SERVER_IP, HTTP_PORT, timeout=10)
        connection.request("GET", args.path, headers={"Host": args.host, "User-Agent": "mirrorcap-lab"})
        response = connection.getresponse()
        body = response.read()
        connection.close()
        results.append({"status": response.status, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()})
    print(json.dumps(results))


def _cmd_dns_serve(args: argparse.Namespace) -> None:
    from scapy.layers.dns import DNS, DNSRR

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((SERVER_IP, DNS_PORT))
    wanted = args.name.rstrip(".").encode() + b"."
    while True:
        data, peer = sock.recvfrom(2048)
        query = DNS(data)
        if not query.qd:
            continue
        question = query.qd[0]
        found = question.qname == wanted and question.qtype == 1
        answers = [DNSRR(rrname=question.qname, type="A", ttl=60, rdata=SERVER_IP)] if found else []
        reply = DNS(id=query.id, qr=1, aa=1, rd=query.rd, ra=0, rcode=0 if found else 3, qd=query.qd, an=answers)
        sock.sendto(bytes(reply), peer)


def _cmd_dns_query(args: argparse.Namespace) -> None:
    from scapy.layers.dns import DNS, DNSQR

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(5)
    query = DNS(id=secrets.randbelow(65536), rd=1, qd=DNSQR(qname=args.name, qtype="A"))
    sock.sendto(bytes(query), (SERVER_IP, DNS_PORT))
    reply = DNS(sock.recv(2048))
    print(next(str(rr.rdata) for rr in reply.an if rr.type == 1))


def _cmd_s3_create_bucket(args: argparse.Namespace) -> None:
    s3 = boto3.client("s3")
    deadline = time.monotonic() + 30
    while True:  # moto_server takes a moment to listen
        try:
            s3.create_bucket(Bucket=args.bucket)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _cmd_s3_download(args: argparse.Namespace) -> None:
    s3 = boto3.client("s3")
    dest = Path(args.dest)
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args.bucket, Prefix=args.prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            path = dest / key
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(args.bucket, key, str(path))
            head = s3.head_object(Bucket=args.bucket, Key=key)
            found.append(
                {
                    "key": key,
                    "path": str(path),
                    "size": head["ContentLength"],
                    "metadata": head.get("Metadata", {}),
                    "content_type": head.get("ContentType", ""),
                }
            )
    print(json.dumps(found))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mirrorcap_tools.netns", description="in-namespace lab helpers")
    commands = parser.add_subparsers(required=True)
    http_get_cmd = commands.add_parser("http-get")
    http_get_cmd.add_argument("path")
    http_get_cmd.add_argument("host")
    http_get_cmd.add_argument("times", type=int)
    http_get_cmd.add_argument("interval", type=float)
    http_get_cmd.set_defaults(run=_cmd_http_get)
    for name, run in (("dns-serve", _cmd_dns_serve), ("dns-query", _cmd_dns_query)):
        sub = commands.add_parser(name)
        sub.add_argument("name")
        sub.set_defaults(run=run)
    create = commands.add_parser("s3-create-bucket")
    create.add_argument("bucket")
    create.set_defaults(run=_cmd_s3_create_bucket)
    download = commands.add_parser("s3-download")
    download.add_argument("bucket")
    download.add_argument("prefix")
    download.add_argument("dest")
    download.set_defaults(run=_cmd_s3_download)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
