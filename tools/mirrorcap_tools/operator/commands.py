"""The operator's subcommands of `mirrorcap` (click): start, watch, fetch, ls, open."""

from __future__ import annotations

import json
import webbrowser
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from mirrorcap_tools.operator.aws import Connection, InvalidRequest, OperatorError
from mirrorcap_tools.operator.stack import Stack, default_stack_name, find_stack

REPORT_NAME = "report.html"
PRESIGNED_SECONDS = 3600


@dataclass
class Target:
    """Where the commands act: the stack by name, reached with the AWS CLI's region, profile and endpoint."""

    stack_name: str | None
    region: str | None
    profile: str | None
    endpoint_url: str | None
    _connection: Connection | None = field(default=None, repr=False)
    _stack: Stack | None = field(default=None, repr=False)

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = Connection.open(region=self.region, profile=self.profile, endpoint_url=self.endpoint_url)
        return self._connection

    @property
    def stack(self) -> Stack:
        if self._stack is None:
            self._stack = find_stack(self.connection, self.stack_name or default_stack_name())
        return self._stack


def target_options(command: Any) -> Any:
    """--stack/--region/--profile/--endpoint-url on each operator command (where people type them)."""
    options = [
        click.option(
            "--stack",
            "stack_name",
            envvar="MIRRORCAP_STACK",
            help="stack name (default: samconfig.toml's, else mirrorcap)",
        ),
        click.option("--region", envvar="AWS_REGION", help="AWS region (as the AWS CLI: AWS_REGION, the profile's)"),
        click.option("--profile", envvar="AWS_PROFILE", help="AWS profile (as the AWS CLI)"),
        click.option(
            "--endpoint-url", envvar="AWS_ENDPOINT_URL", help="send every AWS call here (emulators, VPC endpoints)"
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _target(kwargs: dict[str, Any]) -> Target:
    return Target(kwargs.pop("stack_name"), kwargs.pop("region"), kwargs.pop("profile"), kwargs.pop("endpoint_url"))


def one_line_errors(function: Any) -> Any:
    """OperatorError -> `mirrorcap: error: ...` on stderr and exit 1: never a traceback."""

    def wrapper(**kwargs: Any) -> Any:
        try:
            return function(**kwargs)
        except OperatorError as exc:
            raise click.ClickException(str(exc)) from None

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


def register(group: click.Group) -> None:
    for command in (start, watch, fetch, ls, open_report):
        group.add_command(command)


def _console() -> Console:
    return Console(highlight=False)


@click.command()
@click.argument("instance_id")
@click.option("--duration", "duration_seconds", type=int, help="capture window in seconds (default: the stack's)")
@click.option(
    "--filter", "filter_json", help='the filter document as JSON, e.g. \'{"protocol": "tcp", "ports": [443]}\''
)
@click.option("--protocol", type=click.Choice(["all", "tcp", "udp", "icmp", "icmpv6"]))
@click.option("--port", "ports", multiple=True, help="port on the instance (443 or 8000-8080); repeatable")
@click.option("--remote-port", "remote_ports", multiple=True, help="port on the peers; repeatable")
@click.option("--cidr", "cidrs", multiple=True, help="the peers' network; repeatable")
@click.option("--direction", "directions", multiple=True, type=click.Choice(["ingress", "egress"]))
@click.option("--packet-length", type=int, help="truncate each mirrored packet to this many bytes")
@click.option("--interface", "network_interface_id", help="mirror this attached interface (default: primary)")
@click.option("--capture-id", help="name the capture yourself (default: mc-<time>-<instance>-<hash>)")
@click.option("--follow", is_flag=True, help="then watch it (as `mirrorcap watch`)")
@click.option("--interval", type=float, default=5.0, show_default=True, help="seconds between polls with --follow")
@target_options
@one_line_errors
def start(**kwargs: Any) -> int:
    """Start a capture of INSTANCE_ID; print its id and console link."""
    from mirrorcap_tools.operator.captures import build_request, filter_from_options, start_capture

    target = _target(kwargs)
    shortcuts = filter_from_options(
        kwargs["protocol"], kwargs["ports"], kwargs["remote_ports"], kwargs["cidrs"], kwargs["directions"]
    )
    filter_document = shortcuts
    if kwargs["filter_json"]:
        if shortcuts:
            raise InvalidRequest(
                "--filter and --protocol/--port/--remote-port/--cidr/--direction: give one or the other"
            )
        try:
            filter_document = json.loads(kwargs["filter_json"])
        except ValueError as exc:
            raise InvalidRequest(f"--filter is not JSON: {exc}") from None
    request = build_request(
        kwargs["instance_id"],
        duration_seconds=kwargs["duration_seconds"],
        filter_document=filter_document,
        packet_length=kwargs["packet_length"],
        network_interface_id=kwargs["network_interface_id"],
        capture_id=kwargs["capture_id"],
    )
    started = start_capture(target.connection, target.stack, request)
    click.echo(f"started capture {started.capture_id}")
    click.echo(f"  console: {started.console_url}")
    click.echo(f"  follow:  mirrorcap watch {started.capture_id}")
    if not kwargs["follow"]:
        return 0
    from mirrorcap_tools.operator.watch import follow

    return int(
        follow(target.connection, target.stack, started.capture_id, console=_console(), interval=kwargs["interval"])
    )


@click.command()
@click.argument("capture_id")
@click.option("--interval", type=float, default=5.0, show_default=True, help="seconds between polls")
@target_options
@one_line_errors
def watch(**kwargs: Any) -> int:
    """Follow a capture live until it ends; the exit code says how it ended (docs/cli.md)."""
    from mirrorcap_tools.operator.watch import follow

    target = _target(kwargs)
    return int(
        follow(target.connection, target.stack, kwargs["capture_id"], console=_console(), interval=kwargs["interval"])
    )


@click.command()
@click.argument("capture_id")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              help="download into DIR/CAPTURE_ID/")  # fmt: skip
@target_options
@one_line_errors
def fetch(**kwargs: Any) -> int:
    """Download a capture's pcaps, summary, report and decapsulated pcap; verify every SHA-256."""
    from mirrorcap.naming import capture_prefix

    from mirrorcap_tools.operator.artifacts import fetch as fetch_capture
    from mirrorcap_tools.operator.captures import check_capture_id

    target = _target(kwargs)
    capture_id = kwargs["capture_id"]
    check_capture_id(capture_id)
    stack = target.stack
    result = fetch_capture(target.connection, stack.bucket, capture_prefix(capture_id), capture_id, kwargs["directory"])
    click.echo(result.text())
    if not result.ok:
        raise click.ClickException(
            f"capture {capture_id}: {len(result.mismatched)} file(s) failed verification, {len(result.missing)} missing"
        )
    return 0


@click.command()
@click.option("--since", default="24h", show_default=True, help="how far back: 90m, 24h, 7d")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per capture, for scripts")
@target_options
@one_line_errors
def ls(**kwargs: Any) -> int:
    """Recent captures: id, source, trigger, status, duration, packets, bytes, HTTP 5xx, estimated cost."""
    from mirrorcap_tools.operator.listing import list_captures, parse_since

    target = _target(kwargs)
    rows = list_captures(target.connection, target.stack, parse_since(kwargs["since"]))
    if kwargs["as_json"]:
        for row in rows:
            click.echo(json.dumps(row.as_dict(), default=str))
        return 0
    table = Table("capture", "source", "trigger", "status", "duration", "packets", "bytes", "HTTP 5xx", "est. cost")
    for row in rows:
        table.add_row(
            row.capture_id,
            row.source or "",
            row.trigger or "",
            row.status,
            f"{row.duration_seconds:.0f} s" if row.duration_seconds is not None else "",
            _number(row.packets),
            _number(row.bytes),
            _number(row.http_5xx),
            f"${row.cost['usd']:.4f}" if row.cost else "",
        )
    console = _console()
    console.print(table)
    if rows:
        console.print(f"costs: {rows[0].cost and rows[0].cost['price_region']} list prices as of "
                      f"{rows[0].cost and rows[0].cost['prices_as_of']} (docs/cli.md)")  # fmt: skip
    return 0


@click.command("open")
@click.argument("capture_id")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              help="where `fetch` put it")  # fmt: skip
@click.option("--print-only", is_flag=True, help="print the path or link, do not start a browser")
@target_options
@one_line_errors
def open_report(**kwargs: Any) -> int:
    """Open a capture's report: the local copy if fetched, else a presigned link (valid one hour)."""
    from mirrorcap.naming import capture_prefix

    from mirrorcap_tools.operator.artifacts import list_objects
    from mirrorcap_tools.operator.aws import CaptureNotFound
    from mirrorcap_tools.operator.captures import check_capture_id

    capture_id = kwargs["capture_id"]
    check_capture_id(capture_id)
    local = kwargs["directory"] / capture_id / REPORT_NAME
    target = _target(kwargs)
    if local.exists():
        location = local.resolve().as_uri()
    else:
        stack = target.stack
        key = capture_prefix(capture_id) + REPORT_NAME
        if not any(o.key == key for o in list_objects(target.connection, stack.bucket, capture_prefix(capture_id))):
            raise CaptureNotFound(
                f"no report for capture {capture_id!r} in s3://{stack.bucket}/ (not finished, or unknown)"
            )
        location = target.connection.client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": stack.bucket, "Key": key}, ExpiresIn=PRESIGNED_SECONDS
        )
    click.echo(location)
    if not kwargs["print_only"]:
        webbrowser.open(location)
    return 0


def _number(value: int | None) -> str:
    return "" if value is None else f"{value:,}"
