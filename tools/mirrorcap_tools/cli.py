"""`mirrorcap` command line: operator and developer tools that do not ship in the Lambda layer."""

from __future__ import annotations

import argparse
import importlib
import sys

import click

# The developer tools keep their argparse parsers: each module has `register(subparsers)` and attaches
# its `run(args)` as the parser default; importing one never pays for the others' dependencies (moto).
ARGPARSE_MODULES = {
    "offline": ("mirrorcap_tools.offline.cli", "run a capture on emulated AWS (no account needed)"),
    "report": ("mirrorcap_tools.report_cli", "summarise pcap/pcapng files: HTTP, DNS, TCP health, top talkers"),
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """mirrorcap: start, follow and fetch packet captures of a deployed stack (docs/cli.md), and the
    developer tools (offline runs, reports on any pcap)."""


def _argparse_command(name: str, module_name: str, summary: str) -> click.Command:
    @click.command(
        name,
        help=f"{summary} (`mirrorcap {name} -h` for its options)",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
        add_help_option=False,
    )
    @click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
    def command(arguments: tuple[str, ...]) -> int:
        parser = argparse.ArgumentParser(prog="mirrorcap")
        importlib.import_module(module_name).register(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args([name, *arguments])
        return int(args.run(args) or 0)

    return command


for _name, (_module, _summary) in ARGPARSE_MODULES.items():
    cli.add_command(_argparse_command(_name, _module, _summary))
importlib.import_module("mirrorcap_tools.operator.commands").register(cli)


def main(argv: list[str] | None = None) -> int:
    try:
        result = cli.main(args=argv, prog_name="mirrorcap", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except click.exceptions.Abort:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
