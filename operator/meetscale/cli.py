"""The `meetscale` command (also `kubectl meetscale`, as a kubectl plugin). Each subcommand
lives in its own module, imported only when used.

A user error (a bad option, a bad file, no cluster to talk to) ends in one line that
names the field, the value and what is allowed, and exit code 2; never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from meetscale.usererror import UserError

# subcommand -> (module, one-line help). Each module defines
# `add_arguments(parser: argparse.ArgumentParser) -> None` and
# `main(args: argparse.Namespace) -> int`.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "slots": (
        "meetscale.commands.slots",
        "when can we meet: the starts at which a Meeting would be admitted now",
    ),
    "book": (
        "meetscale.commands.book",
        "write a Meeting manifest in local time (and apply it with --apply)",
    ),
    "run": ("meetscale.commands.run", "run the operator (Kopf) against the current kubeconfig"),
    "version": ("meetscale.commands.version", "print the version"),
    "crds": ("meetscale.crdgen", "print or check the CRD manifests generated from the models"),
    "jvb-sim": (
        "meetscale.bridgesim.cli",
        "run a simulated Jitsi videobridge (HTTP surface of JVB)",
    ),
    "simulate": ("meetscale.sim.cli", "replay a meeting trace against scaling policies"),
}

EXIT_USER_ERROR = 2


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `meetscale slots: --participants: ...` and exit 2
    (argparse's own prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        hint = f" (see {self.prog} --help)"
        print(f"{self.prog}: {message}{hint}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)


def build_parser(prog: str = "meetscale") -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module_name)
        # Only the chosen subcommand's module is imported (see main); here we only
        # need its arguments when it is the one asked for.
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "meetscale") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog)
    # Parse the command name first, then let its module add its own arguments.
    known, _ = parser.parse_known_args(argv[:1] if argv and not argv[0].startswith("-") else argv)
    module = importlib.import_module(known._module)
    command = f"{prog} {known.command}"
    full = Parser(prog=command, description=SUBCOMMANDS[known.command][1])
    module.add_arguments(full)
    args = full.parse_args(argv[1:])
    try:
        return int(module.main(args) or 0)
    except UserError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # `| head`: the reader had enough
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def kubectl_main() -> int:
    """`kubectl meetscale ...`: kubectl runs the `kubectl-meetscale` executable on PATH
    with the arguments after the plugin's name."""
    return main(prog="kubectl meetscale")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
