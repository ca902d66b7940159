"""The `meetscale` command. Each subcommand lives in its own module, imported only when used."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module, one-line help). Each module defines
# `add_arguments(parser: argparse.ArgumentParser) -> None` and
# `main(args: argparse.Namespace) -> int`.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("meetscale.commands.run", "run the operator (Kopf) against the current kubeconfig"),
    "version": ("meetscale.commands.version", "print the version"),
    "crds": ("meetscale.crdgen", "print or check the CRD manifests generated from the models"),
    "jvb-sim": (
        "meetscale.bridgesim.cli",
        "run a simulated Jitsi videobridge (HTTP surface of JVB)",
    ),
    "simulate": ("meetscale.sim.cli", "replay a meeting trace against scaling policies"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meetscale", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module_name)
        # Only the chosen subcommand's module is imported (see main); here we only
        # need its arguments when it is the one asked for.
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Parse the command name first, then let its module add its own arguments.
    known, _ = parser.parse_known_args(argv[:1] if argv and not argv[0].startswith("-") else argv)
    module = importlib.import_module(known._module)
    full = argparse.ArgumentParser(prog=f"meetscale {known.command}")
    module.add_arguments(full)
    args = full.parse_args(argv[1:])
    return int(module.main(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
