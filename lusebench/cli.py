"""The ``lusebench`` command: parses arguments and calls the rooms, nothing more."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from lusebench import __version__
from lusebench.errors import LusebenchError


def _add_simulate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="render binaural mixtures into a dataset folder")
    p.set_defaults(func=_run_simulate)


def _run_simulate(args: argparse.Namespace) -> int:
    raise LusebenchError("simulate is not wired yet")


_PARSERS = [_add_simulate_parser]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lusebench",
        description="Language-queried binaural sound event extraction and localization benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"lusebench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _PARSERS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except LusebenchError as error:
        print(f"lusebench {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lusebench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
