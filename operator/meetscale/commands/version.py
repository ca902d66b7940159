"""`meetscale version`."""

from __future__ import annotations

import argparse

from meetscale import API_VERSION, __version__


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--short", action="store_true", help="print only the version number")


def main(args: argparse.Namespace) -> int:
    print(__version__ if args.short else f"meetscale {__version__} (API {API_VERSION})")
    return 0
