"""The one error tree of dtm, shared by the CLI and every service.

Rule: every failure a user or a peer can see is one of these classes; each knows its wire name,
its CLI exit code and its HTTP status. Foreign exceptions (sqlite3, aiohttp, OSError) are
translated into this tree once, at the boundary that meets them.

    DtmError                        name                 exit  HTTP
    ├── ErrSyntaxInvalidArgs        bad arguments/input     2   400
    │   └── ErrPayloadTooLarge      body over the cap       2   413
    ├── ErrNoDataFound              unknown key / task ID   3   404
    ├── ErrAmbiguousID              prefix matches >1 task  4   409
    ├── ErrNotCaughtUp              replica behind session  5   409
    ├── ErrUnauthorized             no valid credential     8   401
    ├── ErrUnavailable              no node answered        6   503
    │   ├── ErrTimeout              a hop timed out         7   504
    │   │   └── ErrRequestTimeout   the request came slowly 9   408
    │   └── ErrClockSkew            a clock is off too far 10   503
    ├── ErrMaybeApplied             write fate unknown     11   502
    └── ErrInternal                 a bug; never expected  70   500

The mapping to HTTP lives in ``http_status``, to exit codes in ``exit_code``; `from_wire`
turns an error body received over HTTP back into the same class.
"""

from __future__ import annotations

from typing import ClassVar


class DtmError(Exception):
    """Base of every dtm error. ``str(err)`` is the human message."""

    name: ClassVar[str] = "ErrInternal"
    exit_code: ClassVar[int] = 70
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, candidates: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        # Only ErrAmbiguousID fills this: the task IDs a prefix matched.
        self.candidates = candidates

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ErrSyntaxInvalidArgs(DtmError):
    """The request or the command line is malformed: missing, extra or invalid arguments."""

    name = "ErrSyntaxInvalidArgs"
    exit_code = 2
    http_status = 400


class ErrPayloadTooLarge(ErrSyntaxInvalidArgs):
    """A body, value or text is over its size cap."""

    name = "ErrPayloadTooLarge"
    http_status = 413


class ErrNoDataFound(DtmError):
    """The key or task does not exist (or is deleted)."""

    name = "ErrNoDataFound"
    exit_code = 3
    http_status = 404


class ErrAmbiguousID(DtmError):
    """A task ID prefix matches more than one task."""

    name = "ErrAmbiguousID"
    exit_code = 4
    http_status = 409


class ErrNotCaughtUp(DtmError):
    """This replica has not yet applied what the caller's session token requires."""

    name = "ErrNotCaughtUp"
    exit_code = 5
    http_status = 409


class ErrUnavailable(DtmError):
    """No data node (or no service) could be reached."""

    name = "ErrUnavailable"
    exit_code = 6
    http_status = 503


class ErrTimeout(ErrUnavailable):
    """A hop did not answer within its timeout."""

    name = "ErrTimeout"
    exit_code = 7
    http_status = 504


class ErrUnauthorized(DtmError):
    """The request carries no valid credential (the cluster's, or a user's token)."""

    name = "ErrUnauthorized"
    exit_code = 8
    http_status = 401


class ErrRequestTimeout(ErrTimeout):
    """The caller did not send its request (head or body) within the server's timeout."""

    name = "ErrRequestTimeout"
    exit_code = 9
    http_status = 408


class ErrClockSkew(ErrUnavailable):
    """A clock is further from its peers, or a stamp further ahead, than the max offset."""

    name = "ErrClockSkew"
    exit_code = 10
    http_status = 503


class ErrMaybeApplied(DtmError):
    """A write was sent, but its answer was lost: it may or may not have been applied.

    Not an ErrUnavailable, so nothing retries it as if it had never been sent: the caller
    looks (``todo list``) before writing again."""

    name = "ErrMaybeApplied"
    exit_code = 11
    http_status = 502


class ErrInternal(DtmError):
    """A bug: an invariant broke. Never expected in normal operation."""


# Exit codes that are no error of this tree: as shells report a death by signal (128 + signal).
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT)
EXIT_BROKEN_PIPE = 141  # stdout was closed early (SIGPIPE): `todo list | head -1`

ALL_ERRORS: tuple[type[DtmError], ...] = (
    ErrSyntaxInvalidArgs,
    ErrPayloadTooLarge,
    ErrNoDataFound,
    ErrAmbiguousID,
    ErrNotCaughtUp,
    ErrUnavailable,
    ErrTimeout,
    ErrUnauthorized,
    ErrRequestTimeout,
    ErrClockSkew,
    ErrMaybeApplied,
    ErrInternal,
)

_BY_NAME: dict[str, type[DtmError]] = {cls.name: cls for cls in ALL_ERRORS}


def from_wire(name: str, message: str, candidates: tuple[str, ...] = ()) -> DtmError:
    """Rebuild the error a peer sent as ``{"error": name, "message": message, ...}``."""
    cls = _BY_NAME.get(name, ErrInternal)
    if cls is ErrInternal and name != ErrInternal.name:
        message = f"{name}: {message}"
    return cls(message, candidates)


def from_status(status: int, message: str) -> DtmError:
    """An error for an HTTP status that came without a dtm error body (e.g. from a proxy)."""
    if status == 413:
        return ErrPayloadTooLarge(message)
    if status == 404:
        return ErrNoDataFound(message)
    if status == 401:
        return ErrUnauthorized(message)
    if status == 408:
        return ErrRequestTimeout(message)
    if status == 504:
        return ErrTimeout(message)
    if status in (502, 503):
        return ErrUnavailable(message)
    if 400 <= status < 500:
        return ErrSyntaxInvalidArgs(message)
    return ErrInternal(message)
