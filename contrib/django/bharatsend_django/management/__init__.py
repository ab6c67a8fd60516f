"""``manage.py bharatsend_*``: operator commands on the facade ``settings.BHARATSEND`` configures.

The commands mirror the framework-free ``bharatsend`` command line (same output)
and ``flask bharatsend`` (same operations). A known error never shows a
traceback: it becomes a :class:`~django.core.management.base.CommandError` with
one line, ``<code> (<field>): <message>``, any row-by-row detail (a DLT CSV's
faulty lines) written to stderr first. Exit codes are those of ``bharatsend``:
2 when the input was refused (a client error), 1 for a server-side error such as
``configuration_error``.
"""

from __future__ import annotations

import abc
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError

from bharatsend_core.domain.errors import BharatSendError, ClientError

__all__ = ["BharatSendCommand", "command_error"]

#: Exit code of a refused input (client error), as ``bharatsend`` and argparse use.
EXIT_INVALID = 2
#: Exit code of a server-side error.
EXIT_FAILURE = 1


def command_error(err: BharatSendError, stderr: TextIO | Any) -> CommandError:
    """The one-line ``CommandError`` for ``err``; its detail lines go to ``stderr`` first."""
    from bharatsend_core.cli import _render_error

    # _render_error's first line is the headline and the "  field:" line is folded into
    # the one-line message; what stays is the detail (row errors by line number, ...).
    detail = [
        line
        for line in _render_error(err, as_json=False).splitlines()[1:]
        if not line.startswith("  field: ")
    ]
    if detail:
        stderr.write("\n".join(detail))
    field = f" ({err.field})" if err.field else ""
    return CommandError(
        f"{err.code}{field}: {err.message}",
        returncode=EXIT_INVALID if isinstance(err, ClientError) else EXIT_FAILURE,
    )


class BharatSendCommand(BaseCommand, abc.ABC):
    """A command whose :meth:`run` may raise ``BharatSendError`` (shown as one line)."""

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self.run(*args, **options)
        except BharatSendError as err:
            raise command_error(err, self.stderr) from None

    @abc.abstractmethod
    def run(self, *args: Any, **options: Any) -> None:
        """The command's work; subclasses write to ``self.stdout`` and ``self.stderr``."""
