"""The capture command's renderer: every value validated, every value quoted, the script intact.
No root needed: these run everywhere."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from mirrorcap.collector import command
from mirrorcap.collector.command import (
    HEREDOC_END,
    CaptureScriptSpec,
    execution_timeout_seconds,
    finish_seconds,
    render_run_command,
    render_stop_command,
)
from mirrorcap.collector.manifest import CaptureExit
from pydantic import ValidationError

CAPTURE_ID = "mc-20261124t160000z-0abc1234de-3f9a1c"
SCRIPT = Path(command.__file__).with_name("capture.sh")


def spec(**overrides) -> CaptureScriptSpec:
    values = {
        "capture_id": CAPTURE_ID,
        "bucket": "mirrorcap-captures-123456789012",
        "key_prefix": f"captures/{CAPTURE_ID}/",
        "region": "eu-central-1",
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
    commands = render_run_command(spec())
    path = f"/var/lib/mirrorcap/capture-{CAPTURE_ID}.sh"
    start = commands.index(f"cat > {path} <<'{HEREDOC_END}'")
    end = commands.index(HEREDOC_END)
    assert "\n".join(commands[start + 1 : end]) + "\n" == SCRIPT.read_text()
    argv = exec_argv(commands)
    assert argv[:2] == ["/bin/bash", path]
    options = dict(zip(argv[2::2], argv[3::2], strict=True))
    assert options == {
        "--capture-id": CAPTURE_ID,
        "--bucket": "mirrorcap-captures-123456789012",
        "--key-prefix": f"captures/{CAPTURE_ID}/",
        "--region": "eu-central-1",
        "--duration": "300",
        "--vni": "1234567",
        "--snaplen": "0",
        "--rotate-megabytes": "100",
        "--rotate-seconds": "300",
        "--finish-seconds": str(finish_seconds(spec())),
    }


def test_every_command_is_one_line():
    assert all("\n" not in line and "\r" not in line for line in render_run_command(spec()))


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_rendered_commands_parse_in_posix_sh_and_bash(shell, tmp_path):
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} not installed")
    script = tmp_path / "_script.sh"
    script.write_text("\n".join(render_run_command(spec())) + "\n")
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


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_regions_are_refused(value):
    with pytest.raises(ValidationError):
        spec(region=value)


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


@pytest.mark.parametrize("region", ["us-east-1", "us-gov-west-1", "ap-southeast-5", "cn-northwest-1", "il-central-1"])
def test_valid_regions_pass(region):
    assert spec(region=region).region == region


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
    "--region": "us-east-1",
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
        ("--region", "us-east-1 --endpoint-url http://evil"),
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
