"""The one exception for what a user got wrong: its text is the whole message."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A bad value given by the user (an option, a file, the environment). The message
    names the field, the value and what is allowed; `meetscale` prints it on one line
    and exits with code 2."""
