"""`mirrorcap` command line: operator and developer tools that do not ship in the Lambda layer."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each subcommand lives in its own module with `register(subparsers)`; the module's `run(args)` is
# attached as the parser default, so importing one tool never pays for the others' dependencies.
SUBCOMMAND_MODULES = (
    "mirrorcap_tools.offline.cli",
    "mirrorcap_tools.report_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mirrorcap", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
