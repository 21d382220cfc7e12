"""The operator's command line end to end: `mirrorcap` as its own process, over HTTP, against the emulated
account while the workflow executes in it."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

WEB_1 = "i-0123456789abcdef0"
LEGACY = "i-0aaaabbbbccccdddd"


def _started_id(stdout: str) -> str:
    match = re.search(r"started capture (\S+)", stdout)
    assert match, stdout
    return match.group(1)


def _manifest(world, capture_id: str) -> dict:
    s3 = world.client("s3")
    return json.loads(s3.get_object(Bucket=world.bucket, Key=f"captures/{capture_id}/manifest.json")["Body"].read())


def test_start_watch_fetch_ls(served, tmp_path: Path) -> None:
    started = served.run("start", WEB_1, "--duration", "60", "--protocol", "tcp", "--port", "80")
    assert started.returncode == 0, started.stderr
    capture_id = _started_id(started.stdout)
    assert re.fullmatch(r"mc-\d{8}t\d{6}z-\w{10}-[0-9a-f]{6}", capture_id)
    execution = served.executions()[0]
    assert execution["name"] == capture_id  # the execution is named by the capture id
    assert execution["executionArn"] in started.stdout  # the console link names the execution
    document = json.loads(
        served.world.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])["input"]
    )
    assert document == {
        "instance_id": WEB_1,
        "duration_seconds": 60,
        "filter": {"protocol": "tcp", "ports": [{"from_port": 80, "to_port": 80}]},
        "capture_id": capture_id,
    }

    watched = served.run("watch", capture_id, "--interval", "0.1")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "SUCCEEDED" in watched.stdout
    headline = re.search(
        r"done: (\d+) packets · HTTP 5xx (\d+) · 4xx (\d+) · (\d+) reset connections · report (\S+)", watched.stdout
    )
    assert headline, watched.stdout
    summary = json.loads(
        served.world.client("s3")
        .get_object(Bucket=served.world.bucket, Key=f"captures/{capture_id}/summary.json")["Body"]
        .read()
    )
    assert int(headline.group(1)) == summary["totals"]["packets"] > 0
    assert int(headline.group(2)) == sum(
        n for s, n in summary["http"]["responses_by_status"].items() if s.startswith("5")
    )
    assert headline.group(5) == f"s3://{served.world.bucket}/captures/{capture_id}/report.html"

    fetched = served.run("fetch", capture_id, "--dir", str(tmp_path))
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    manifest = _manifest(served.world, capture_id)
    folder = tmp_path / capture_id
    for entry in manifest["files"]:
        name = entry["key"].rsplit("/", 1)[-1]
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == entry["sha256"]
        assert name in fetched.stdout
    assert f"{len(manifest['files'])} pcap(s): SHA-256 matches manifest.json" in fetched.stdout
    assert {"summary.json", "report.html", "decapsulated.pcap", "manifest.json"} <= {p.name for p in folder.iterdir()}
    assert not list(folder.glob("*.part*"))

    again = served.run("fetch", capture_id, "--dir", str(tmp_path))
    assert "already downloaded and verified" in again.stdout

    listed = served.run("ls", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    row = next(r for r in rows if r["capture_id"] == capture_id)
    assert row["source"] == WEB_1 and row["trigger"] == "manual" and row["status"] == "SUCCEEDED"
    assert row["packets"] == manifest["packets_captured"]
    assert row["bytes"] == sum(
        o["Size"]
        for o in served.world.client("s3").list_objects_v2(
            Bucket=served.world.bucket, Prefix=f"captures/{capture_id}/"
        )["Contents"]
    )
    assert row["http_5xx"] == int(headline.group(2))
    cost = row["cost"]
    assert cost["usd"] > 0 and cost["prices_as_of"] and cost["usage"]["collector_type"] == "t3.medium"
    assert cost["usage"]["state_transitions"] >= 20 and cost["usage"]["lambda_gb_seconds"] > 0

    table = served.run("ls")
    assert capture_id in table.stdout and "SUCCEEDED" in table.stdout and "$" in table.stdout

    opened = served.run("open", capture_id, "--dir", str(tmp_path), "--print-only")
    assert opened.stdout.strip() == (folder / "report.html").resolve().as_uri()
    presigned = served.run("open", capture_id, "--dir", str(tmp_path / "elsewhere"), "--print-only")
    assert presigned.returncode == 0, presigned.stderr
    assert f"/captures/{capture_id}/report.html?" in presigned.stdout and "Signature" in presigned.stdout


def test_fetch_resumes_a_partial_download_and_detects_corruption(served, tmp_path: Path) -> None:
    started = served.run("start", WEB_1, "--duration", "30", "--capture-id", "mc-resume-test")
    assert started.returncode == 0, started.stderr
    assert served.run("watch", "mc-resume-test", "--interval", "0.1").returncode == 0
    s3 = served.world.client("s3")
    pcap = next(f for f in _manifest(served.world, "mc-resume-test")["files"])
    name = pcap["key"].rsplit("/", 1)[-1]
    stored = s3.get_object(Bucket=served.world.bucket, Key=pcap["key"])
    body = stored["Body"].read()

    # What an interrupted download leaves: the first part of the object, and which version it was of.
    folder = tmp_path / "mc-resume-test"
    folder.mkdir()
    half = len(body) // 2
    (folder / f"{name}.part").write_bytes(body[:half])
    (folder / f"{name}.part.etag").write_text(stored["ETag"])
    resumed = served.run("fetch", "mc-resume-test", "--dir", str(tmp_path))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{name}: resumed at byte {half}" in resumed.stdout
    assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == pcap["sha256"]

    # A part of another version of the object is not continued: the download starts over.
    other = tmp_path / "other"
    (other / "mc-resume-test").mkdir(parents=True)
    (other / "mc-resume-test" / f"{name}.part").write_bytes(b"x" * half)
    (other / "mc-resume-test" / f"{name}.part.etag").write_text('"not-this-version"')
    fresh = served.run("fetch", "mc-resume-test", "--dir", str(other))
    assert fresh.returncode == 0 and "resumed" not in fresh.stdout
    assert hashlib.sha256((other / "mc-resume-test" / name).read_bytes()).hexdigest() == pcap["sha256"]

    # The object in S3 no longer matches its manifest: detected, the bad copy set aside, non-zero exit.
    s3.put_object(Bucket=served.world.bucket, Key=pcap["key"], Body=body[:-1] + bytes([body[-1] ^ 0xFF]))
    corrupt = served.run("fetch", "mc-resume-test", "--dir", str(tmp_path / "corrupt"))
    assert corrupt.returncode == 1
    assert f"{name}: SHA-256 DOES NOT MATCH manifest.json" in corrupt.stdout
    assert "1 file(s) failed verification" in corrupt.stderr
    assert not (tmp_path / "corrupt" / "mc-resume-test" / name).exists()
    assert (tmp_path / "corrupt" / "mc-resume-test" / f"{name}.sha256-mismatch").exists()


def _one_line_error(result) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_bad_input_is_one_clear_line_and_creates_nothing(served) -> None:
    errors = {
        "unknown instance": served.run("start", "i-0000000000000000f"),
        "malformed instance": served.run("start", "web-1"),
        "unsupported duration": served.run("start", WEB_1, "--duration", "5"),
        "unsupported instance": served.run("start", LEGACY),
        "filter twice": served.run(
            "start", WEB_1, "--filter", '{"protocol": "tcp", "ports": [443]}', "--protocol", "udp"
        ),
        "port without protocol": served.run("start", WEB_1, "--port", "80"),
        "filter not JSON": served.run("start", WEB_1, "--filter", "tcp 443"),
        "no credentials": served.run("start", WEB_1, AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY=""),
        "wrong stack": served.run("start", WEB_1, "--stack", "no-such-stack"),
        "unknown capture id": served.run("watch", "mc-20260101t000000z-0000000000-abcdef"),
        "not a capture id": served.run("fetch", "Not_An_Id"),
        "unknown capture to fetch": served.run("fetch", "mc-never-ran"),
    }
    said = {case: _one_line_error(result) for case, result in errors.items()}
    assert "instance i-0000000000000000f not found in us-east-1" in said["unknown instance"]
    assert "instance_id: String should match pattern" in said["malformed instance"]
    assert "duration_seconds: Input should be greater than or equal to 10" in said["unsupported duration"]
    assert f"instance {LEGACY} cannot be a mirror source" in said["unsupported instance"]
    assert "give one or the other" in said["filter twice"]
    assert "invalid capture filter: filter: ports need protocol tcp or udp" in said["port without protocol"]
    assert "--filter is not JSON" in said["filter not JSON"]
    assert "no AWS credentials" in said["no credentials"]
    assert "stack 'no-such-stack' not found in us-east-1" in said["wrong stack"]
    assert (
        "no capture 'mc-20260101t000000z-0000000000-abcdef' in stack 'mirrorcap-operator'" in said["unknown capture id"]
    )
    assert "is not a capture id" in said["not a capture id"]
    assert "capture 'mc-never-ran' delivered nothing" in said["unknown capture to fetch"]
    assert served.executions() == []  # nothing was started
    print("\n".join(f"{case}: {line}" for case, line in said.items()))


def test_access_denied_names_the_action(served, monkeypatch) -> None:
    """An operator who may read the stack and the instances but not start executions: moto's server
    enforces IAM here (INITIAL_NO_AUTH_ACTION_COUNT = 0), with the policy below and nothing else."""
    from moto import settings

    iam = served.world.client("iam")
    iam.create_user(UserName="on-call")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["cloudformation:DescribeStacks", "ec2:DescribeInstances", "ec2:DescribeInstanceTypes"],
                "Resource": "*",
            }
        ],
    }
    iam.put_user_policy(UserName="on-call", PolicyName="read-only", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="on-call")["AccessKey"]
    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)

    denied = served.run(
        "start", WEB_1, AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"]
    )
    line = _one_line_error(denied)
    assert (
        line
        == "Error: access denied: you may not call states:StartExecution (User: arn:aws:iam::123456789012:user/on-call is not authorized to perform: states:StartExecution)"
    )
    unknown = served.run("start", WEB_1, AWS_ACCESS_KEY_ID="AKIAUNKNOWNUNKNOWN00", AWS_SECRET_ACCESS_KEY="wrong")
    assert "AWS rejected the credentials (InvalidClientTokenId)" in _one_line_error(unknown)
    monkeypatch.undo()
    assert served.executions() == []
    print(line)


def test_watch_exit_code_says_how_it_ended(served) -> None:
    from mirrorcap_tools.offline.faults import Fault, FaultPlan
    from mirrorcap_tools.offline.runner import instrument_functions

    # AWS refuses the mirror session: the workflow tears down and fails with AWS's error.
    instrument_functions(
        served.world,
        FaultPlan([Fault.parse("ec2:CreateTrafficMirrorSession=TrafficMirrorSourcesPerTargetLimitExceeded")]),
    )
    assert served.run("start", WEB_1, "--duration", "30", "--capture-id", "mc-refused").returncode == 0
    failed = served.run("watch", "mc-refused", "--interval", "0.1")
    assert failed.returncode == 4, failed.stdout + failed.stderr
    assert "FAILED: MirrorSetupFailed create_session: TrafficMirrorSourcesPerTargetLimitExceeded" in failed.stdout
    assert "✓ teardown         deleted 4, nothing left" in failed.stdout
    assert "· capture window" in failed.stdout and "· report" in failed.stdout

    # Two captures of one source at once: the second creates nothing and says so.
    instrument_functions(served.world, FaultPlan())
    assert served.run("start", WEB_1, "--duration", "60", "--capture-id", "mc-first").returncode == 0
    assert served.run("start", WEB_1, "--duration", "60", "--capture-id", "mc-second").returncode == 0
    second = served.run("watch", "mc-second", "--interval", "0.1")
    assert second.returncode == 3, second.stdout + second.stderr
    assert f"not captured: another capture of {WEB_1} was running" in second.stdout
    assert served.run("watch", "mc-first", "--interval", "0.1").returncode == 0
