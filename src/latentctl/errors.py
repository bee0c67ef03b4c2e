"""The one exception type that library code raises for problems a user can fix."""

from __future__ import annotations

import errno


class LatentctlError(Exception):
    """A failure to report to the user as one line, with a hint on what to do next.

    The CLI turns it into ``error: <message>`` plus ``hint: <hint>`` on stderr and exit code 1.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} (hint: {self.hint})"


class UsageError(LatentctlError):
    """Options that do not go together, or a value a model cannot take, found by the library.

    The CLI reports it as Typer reports a bad flag: ``Invalid value for OPTION: <message>``, exit code 2.
    """

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type's name if it has none), at most ``limit`` characters:
    what a one-line error quotes of a library's multi-line one."""
    return ((str(error).strip().splitlines() or [type(error).__name__])[0])[:limit]


def from_os_error(error: OSError) -> LatentctlError:
    """What an OSError that reached the CLI means for the user: a full disk, a folder they cannot write, or else."""
    where = f": {error.filename}" if error.filename else ""
    if error.errno == errno.ENOSPC:
        return LatentctlError(f"the disk is full{where}", hint="free some space, or point --out / "
                              "LATENTCTL_HOME at a disk with room; nothing was left half-written")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return LatentctlError(f"permission denied{where}", hint="choose a folder you can write to")
    return LatentctlError(f"{error.strerror or error}{where}", hint="rerun with --debug for details")
