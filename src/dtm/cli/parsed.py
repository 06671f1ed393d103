"""The parsed form of each `todo` command: what the grammar produces and `commands.run` carries out.

Rule: a parsed command holds exactly what was typed, checked but not resolved: IDs as normalised
prefixes, due dates as typed (resolved against today's date when the command runs).
"""

from __future__ import annotations

from dataclasses import dataclass

from dtm.core.tasks import Show, SortKey, Status
from dtm.errors import ErrSyntaxInvalidArgs


@dataclass(frozen=True, slots=True)
class Create:
    text: str
    due: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ListTasks:
    show: Show = "all"
    words: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    due_before: str | None = None
    sort: SortKey = "created"
    limit: int | None = None
    ids: bool = False  # only the full IDs, one per line


@dataclass(frozen=True, slots=True)
class ShowTask:
    refs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Update:
    refs: tuple[str, ...]
    status: Status | None = None
    text: str | None = None
    due: str | None = None  # "none" clears it
    tags: tuple[str, ...] | None = None  # () clears them


@dataclass(frozen=True, slots=True)
class Delete:
    refs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Export:
    pass


@dataclass(frozen=True, slots=True)
class Import:
    path: str


@dataclass(frozen=True, slots=True)
class SessionReset:
    pass


@dataclass(frozen=True, slots=True)
class Completion:
    shell: str


@dataclass(frozen=True, slots=True)
class ClusterView:
    """`cluster <view> …`: its own options are read by the view's module."""

    view: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Help:
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class Version:
    pass


@dataclass(frozen=True, slots=True)
class Shell:
    pass


@dataclass(frozen=True, slots=True)
class Exit:
    pass


@dataclass(frozen=True, slots=True)
class Clear:
    pass


@dataclass(frozen=True, slots=True)
class Empty:
    """A blank or comment line in the shell."""


@dataclass(frozen=True, slots=True)
class Invalid:
    error: ErrSyntaxInvalidArgs


Command = (
    Create
    | ListTasks
    | ShowTask
    | Update
    | Delete
    | Export
    | Import
    | SessionReset
    | Completion
    | ClusterView
    | Help
    | Version
    | Shell
    | Exit
    | Clear
    | Empty
    | Invalid
)
# Commands answered without the request handler.
LOCAL = (Help, Version, Completion, ClusterView, Invalid, Empty, Exit, Clear)
