"""The ``sre-triage`` command line: serve, worker, ingest, search, triage, ask, digest.

Each subcommand's work lives in its own module (``triage/cli/cmd_<name>.py``), imported only when it runs, so
``sre-triage --help`` stays fast and a missing optional piece breaks only its own command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from triage.settings import StartupError

COMMANDS: dict[str, str] = {
    "serve": "run the HTTP API (webhooks, reports, /ask)",
    "worker": "run the arq triage worker",
    "ingest": "index runbooks and EXTRA_DOCS_DIRS into the runbook index",
    "search": "search the runbook index",
    "triage": "triage one alert payload file in-process and print the report",
    "ask": "ask an operational question",
    "digest": "print (and with --send, send) the alert digest of a period",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sre-triage", description="Alert-driven triage for self-hosted infrastructure."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = _module(name)
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if module is not None and hasattr(module, "add_arguments"):
            module.add_arguments(cmd)
    return parser


def _module(name: str) -> object | None:
    try:
        return importlib.import_module(f"triage.cli.cmd_{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"triage.cli.cmd_{name}":
            return None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = _module(args.command)
    if module is None or not hasattr(module, "run"):
        parser.error(f"the {args.command} command is not available in this build")
    try:
        result = module.run(args)
    except StartupError as exc:
        print(f"sre-triage: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
