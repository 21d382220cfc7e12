"""The capture command's renderer: every value validated, every value quoted, the script intact.
No root needed: these run everywhere."""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from mirrorcap.collector import command
from mirrorcap.collector.command import (
    HEREDOC_END,
    CaptureScriptSpec,
    execution_timeout_seconds,
    finish_seconds,
    grant_path,
    render_renewal_command,
    render_run_command,
    render_stop_command,
)
from mirrorcap.collector.grant import (
    COLLECTOR_FIELDS,
    UploadGrant,
    grant_from_post,
    grant_lines,
    post_conditions,
    post_request,
)
from mirrorcap.collector.manifest import CaptureExit
from mirrorcap.runtime import AwsClients
from mirrorcap_tools.emulation.ssm_agent import MAX_DOCUMENT_BYTES, RUN_SHELL_SCRIPT_BYTES
from pydantic import ValidationError

CAPTURE_ID = "mc-20261124t160000z-0abc1234de-3f9a1c"
SCRIPT = Path(command.__file__).with_name("capture.sh")


def _grant() -> UploadGrant:
    """A grant as botocore signs one with a role session's credentials (presigning needs no network)."""
    credentials = {
        "AccessKeyId": "ASIAEXAMPLEEXAMPLE12",
        "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "SessionToken": "IQoJb3JpZ2luX2VjEXAMPLE/+token==",
    }
    s3 = AwsClients(boto3.session.Session(region_name="eu-central-1")).s3_as(credentials)
    post = s3.generate_presigned_post(
        Bucket="mirrorcap-captures-123456789012", **post_request(f"captures/{CAPTURE_ID}/", 102_000_000)
    )
    return grant_from_post(post, datetime(2026, 11, 24, tzinfo=UTC))


GRANT = _grant()


def spec(**overrides) -> CaptureScriptSpec:
    values = {
        "capture_id": CAPTURE_ID,
        "bucket": "mirrorcap-captures-123456789012",
        "key_prefix": f"captures/{CAPTURE_ID}/",
        "duration_seconds": 300,
        "vni": 1234567,
    }
    values.update(overrides)
    if "capture_id" in overrides and "key_prefix" not in overrides:
        values["key_prefix"] = f"captures/{overrides['capture_id']}/"
    return CaptureScriptSpec(**values)


def exec_argv(commands: list[str]) -> list[str]:
    """The argv of the final `exec` line, as the shell will split it."""
    assert commands[-1].startswith("exec ")
    return shlex.split(commands[-1].removeprefix("exec "))


def test_renders_a_heredoc_of_the_script_then_execs_bash_on_it():
    commands = render_run_command(spec(), GRANT)
    path = f"/var/lib/mirrorcap/capture-{CAPTURE_ID}.sh"
    assert "\n".join(heredoc(commands, path)) + "\n" == SCRIPT.read_text()
    argv = exec_argv(commands)
    assert argv[:2] == ["/bin/bash", path]
    options = dict(zip(argv[2::2], argv[3::2], strict=True))
    assert options == {
        "--capture-id": CAPTURE_ID,
        "--bucket": "mirrorcap-captures-123456789012",
        "--key-prefix": f"captures/{CAPTURE_ID}/",
        "--duration": "300",
        "--vni": "1234567",
        "--snaplen": "0",
        "--rotate-megabytes": "100",
        "--rotate-seconds": "300",
        "--finish-seconds": str(finish_seconds(spec())),
    }


def test_every_command_is_one_line():
    assert all("\n" not in line and "\r" not in line for line in render_run_command(spec(), GRANT))


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_rendered_commands_parse_in_posix_sh_and_bash(shell, tmp_path):
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} not installed")
    script = tmp_path / "_script.sh"
    script.write_text("\n".join(render_run_command(spec(), GRANT)) + "\n")
    subprocess.run([shell, "-n", str(script)], check=True)


def test_the_script_parses_in_bash():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_the_script_and_the_python_side_agree_on_exit_codes():
    declared = dict(re.findall(r"^readonly EXIT_([A-Z_]+)=(\d+)", SCRIPT.read_text(), re.MULTILINE))
    assert {name: int(code) for name, code in declared.items()} == {e.name: e.value for e in CaptureExit}


def test_the_script_and_the_python_side_agree_on_timings():
    text = SCRIPT.read_text()
    for name in ("DRAIN_SECONDS", "STOP_GRACE_SECONDS", "MANIFEST_SECONDS"):
        assert re.search(rf"^readonly {name}={getattr(command, name)}\b", text, re.MULTILINE), name
    assert "upload_timeout=$((60 + 2 * rotate_megabytes))" in text
    assert command.upload_timeout_seconds(spec(rotate_megabytes=7)) == 60 + 2 * 7


def test_the_script_has_nothing_ssm_would_interpolate():
    assert "{{" not in SCRIPT.read_text()


def test_execution_timeout_covers_the_window_start_up_grace_and_finish():
    s = spec(duration_seconds=600, rotate_megabytes=50)
    assert execution_timeout_seconds(s) == 600 + 60 + 2 + 15 + finish_seconds(s)
    assert finish_seconds(s) == 2 * (60 + 2 * 50) + 60


def test_longest_capture_fits_in_ssm_s_maximum_execution_timeout():
    longest = spec(duration_seconds=86400, rotate_megabytes=command.MAX_ROTATE_MEGABYTES)
    assert execution_timeout_seconds(longest) <= 172800


HOSTILE = [
    "x; rm -rf /",
    "$(reboot)",
    "`id`",
    "a b",
    "a'b",
    'a"b',
    "a\nb",
    "abc\n",
    "a|b",
    "a&b",
    "a>b",
    "a\\b",
    "a*",
    "{{ssm:secret}}",
    "a\x00b",
    "é",
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_capture_ids_are_refused(value):
    with pytest.raises(ValidationError):
        spec(capture_id=value, key_prefix=f"captures/{value}/")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_buckets_are_refused(value):
    with pytest.raises(ValidationError):
        spec(bucket=value)


@pytest.mark.parametrize("value", [*HOSTILE, f"captures/{CAPTURE_ID}", f"captures/{CAPTURE_ID}/x/", "captures/other/"])
def test_a_prefix_other_than_the_capture_s_is_refused(value):
    with pytest.raises(ValidationError, match="key_prefix"):
        spec(key_prefix=value)


@pytest.mark.parametrize(
    "bucket",
    [
        "ab",
        "a" * 64,
        "Upper",
        "-leading",
        "trailing-",
        "a..b",
        "a.-b",
        "a-.b",
        "192.168.5.4",
        "xn--abc",
        "sthree-abc",
        "abc-s3alias",
        "abc--ol-s3",
        "abc.mrap",
        "abc--x-s3",
        "under_score",
    ],
)
def test_s3_bucket_naming_rules(bucket):
    with pytest.raises(ValidationError):
        spec(bucket=bucket)


@pytest.mark.parametrize("bucket", ["abc", "a" * 63, "my.bucket-1", "mirrorcap-captures-123456789012"])
def test_valid_buckets_pass(bucket):
    assert spec(bucket=bucket).bucket == bucket


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("duration_seconds", 0),
        ("duration_seconds", 86401),
        ("duration_seconds", "60"),  # strict: no coercion from text
        ("duration_seconds", True),
        ("duration_seconds", 60.0),
        ("vni", 0),
        ("vni", 16_777_216),
        ("vni", "1; id"),
        ("snaplen", 63),
        ("snaplen", command.MIN_SNAPLEN - 1),
        ("snaplen", 65536),
        ("snaplen", -1),
        ("rotate_megabytes", 0),
        ("rotate_megabytes", command.MAX_ROTATE_MEGABYTES + 1),
        ("rotate_seconds", command.MIN_ROTATE_SECONDS - 1),
        ("rotate_seconds", command.MAX_ROTATE_SECONDS + 1),
    ],
)
def test_out_of_range_or_mistyped_numbers_are_refused(field, value):
    with pytest.raises(ValidationError):
        spec(**{field: value})


def test_unknown_fields_are_refused():
    with pytest.raises(ValidationError):
        spec(filter="tcp port 22")


def test_spec_is_frozen():
    s = spec()
    with pytest.raises(ValidationError):
        s.bucket = "other-bucket"


def test_snaplen_bounds_are_accepted():
    assert spec(snaplen=0).snaplen == 0
    assert spec(snaplen=command.MIN_SNAPLEN).snaplen == command.MIN_SNAPLEN
    assert spec(snaplen=65535).snaplen == 65535


def test_stop_command_signals_the_capture_s_pid_file_only():
    lines = render_stop_command(spec())
    assert lines[1].startswith(f"pid=$(cat /var/lib/mirrorcap/{CAPTURE_ID}/capture.pid ")
    assert sum("kill -TERM" in line for line in lines) == 1


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_stop_command_without_a_running_capture_succeeds(shell):
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} not installed")
    done = subprocess.run([shell, "-c", "\n".join(render_stop_command(spec()))], capture_output=True, text=True)
    assert done.returncode == 0
    assert "no capture running" in done.stdout


# The script re-checks what it is given: a hand-edited or replayed command with a bad value never gets to
# tcpdump or S3. It refuses before touching the disk; PATH is emptied so that even a wrongly accepted
# value could run nothing on this machine.
SCRIPT_ARGS = {
    "--capture-id": CAPTURE_ID,
    "--bucket": "mirrorcap-captures-1",
    "--key-prefix": f"captures/{CAPTURE_ID}/",
    "--duration": "60",
    "--vni": "42",
    "--snaplen": "0",
    "--rotate-megabytes": "100",
    "--rotate-seconds": "300",
    "--finish-seconds": "580",
}


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--capture-id", "x; touch /tmp/pwned"),
        ("--capture-id", "abc\n"),
        ("--bucket", "bucket$(id)"),
        ("--key-prefix", "captures/other/"),
        ("--duration", "60; id"),
        ("--duration", "0"),
        ("--vni", "16777216"),
        ("--vni", "010"),  # bash would read it as octal
        ("--snaplen", "-1"),
        ("--rotate-megabytes", "1001"),
        ("--rotate-seconds", "4"),
        ("--finish-seconds", "1e9"),
    ],
)
def test_the_script_refuses_bad_arguments(option, value):
    args = {**SCRIPT_ARGS, option: value}
    done = run_script_without_tools([part for pair in args.items() for part in pair])
    assert done.returncode == CaptureExit.BAD_ARGUMENTS, done.stderr
    assert option in done.stderr


def test_the_script_refuses_unknown_options():
    done = run_script_without_tools(["--capture-id", CAPTURE_ID, "--endpoint-url", "http://evil"])
    assert done.returncode == CaptureExit.BAD_ARGUMENTS
    assert "unknown argument: --endpoint-url" in done.stderr


def run_script_without_tools(args: list[str]) -> subprocess.CompletedProcess:
    bash = shutil.which("bash")
    return subprocess.run(
        [bash, str(SCRIPT), *args], capture_output=True, text=True, timeout=10, env={"PATH": "/nonexistent"}
    )


# --- the upload grant -------------------------------------------------------------------------------------


def heredoc(commands: list[str], target: str) -> list[str]:
    start = commands.index(f"cat > {target} <<'{HEREDOC_END}'")
    return commands[start + 1 : commands.index(HEREDOC_END, start)]


def test_the_grant_is_written_before_the_script_and_swapped_in_whole():
    commands = render_run_command(spec(), GRANT)
    path = grant_path(CAPTURE_ID)
    assert heredoc(commands, f"{path}.new") == grant_lines(GRANT)
    swap = commands.index(f"mv -f {path}.new {path}")
    assert swap < commands.index(f"cat > /var/lib/mirrorcap/capture-{CAPTURE_ID}.sh <<'{HEREDOC_END}'")


def test_a_renewal_only_replaces_the_grant_file():
    commands = render_renewal_command(CAPTURE_ID, GRANT)
    path = grant_path(CAPTURE_ID)
    assert heredoc(commands, f"{path}.new") == grant_lines(GRANT)
    assert commands[-1] == f"mv -f {path}.new {path}"
    assert not any("capture-" in line or "kill" in line for line in commands)


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_a_renewal_parses_in_posix_sh_and_bash(shell, tmp_path):
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} not installed")
    script = tmp_path / "_script.sh"
    script.write_text("\n".join(render_renewal_command(CAPTURE_ID, GRANT)) + "\n")
    subprocess.run([shell, "-n", str(script)], check=True)


def test_the_command_fits_ssm_s_document_quota_even_with_the_longest_grant():
    """SSM counts a command's parameters against the 64 KB quota on its document's content."""
    longest = UploadGrant(
        url=GRANT.url, fields={**GRANT.fields, "policy": "p" * 4096, "x-amz-security-token": "t" * 4096},
        expires_at=GRANT.expires_at,
    )  # fmt: skip
    longest_id = "mc-" + "a" * 60
    parameters = {
        "commands": render_run_command(spec(capture_id=longest_id, duration_seconds=86400), longest),
        "executionTimeout": ["172800"],
    }
    assert RUN_SHELL_SCRIPT_BYTES + len(json.dumps(parameters).encode()) < 0.75 * MAX_DOCUMENT_BYTES


def test_a_grant_holds_only_the_signed_fields():
    assert GRANT.url == "https://mirrorcap-captures-123456789012.s3.eu-central-1.amazonaws.com/"  # regional
    assert set(GRANT.fields) == {
        "policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-security-token", "x-amz-signature"
    }  # fmt: skip


def test_the_policy_names_every_field_the_script_sends():
    """S3 refuses a POST with a field its policy does not name: the script and the conditions must agree."""
    sent = set(re.findall(r'--form-string "([A-Za-z0-9-]+)=\$', SCRIPT.read_text())) - {"$name"}
    assert sent == set(COLLECTOR_FIELDS)
    conditioned = {c[1].removeprefix("$") for c in post_conditions("captures/x/", 1) if c[0] == "starts-with"}
    assert conditioned == set(COLLECTOR_FIELDS)
    policy = json.loads(base64.b64decode(GRANT.fields["policy"]))
    assert ["starts-with", "$key", f"captures/{CAPTURE_ID}/"] in policy["conditions"]
    assert ["content-length-range", 0, 102_000_000] in policy["conditions"]
    assert {"bucket": "mirrorcap-captures-123456789012"} in policy["conditions"]


@pytest.mark.parametrize(
    "url",
    [
        "http://mirrorcap.s3.amazonaws.com/",  # plain http off loopback
        "https://evil.example/$(id)/",
        "https://bucket.s3.amazonaws.com/ -o /etc/passwd",
        "https://bucket.s3.amazonaws.com/\nrm",
        "file:///etc/passwd",
        "http://127.0.0.2:4566/bucket",
    ],
)
def test_grants_with_a_strange_url_are_refused(url):
    with pytest.raises(ValidationError, match="url"):
        UploadGrant(url=url, fields=GRANT.fields, expires_at=GRANT.expires_at)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("key", "captures/other/x"),  # the collector names objects itself, under the policy's prefix
        ("success_action_redirect", "https://evil.example/"),
        ("policy", "abc def"),
        ("policy", "abc\nurl=https://evil.example/"),
        ("x-amz-signature", "$(id)"),
        ("x-amz-signature", "@/etc/passwd"),
        ("x-amz-signature", "a" * 4097),
    ],
)
def test_grants_with_a_strange_field_are_refused(name, value):
    with pytest.raises(ValidationError, match="fields"):
        UploadGrant(url=GRANT.url, fields={**GRANT.fields, name: value}, expires_at=GRANT.expires_at)


def test_the_script_checks_the_grant_file_as_the_model_does():
    text = SCRIPT.read_text()
    assert "policy | x-amz-algorithm | x-amz-credential | x-amz-date | x-amz-security-token | x-amz-signature)" in text
    assert r"[[ ! $value =~ ^[A-Za-z0-9+/=_.:-]{1,4096}$ ]]" in text
