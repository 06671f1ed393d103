"""The parsed form of each `todo` command: what the grammar produces and `commands.run` carries out.

Rule: a parsed command holds exactly what was typed, checked but not resolved: IDs as normalised
prefixes, due dates as typed (resolved against today's date when the command runs).
"""

from __future__ import annotations

import msgspec

from dtm.core.tasks import Show, SortKey, Status
from dtm.errors import ErrSyntaxInvalidArgs


class Create(msgspec.Struct, frozen=True):
    text: str
    due: str | None = None
    tags: tuple[str, ...] = ()


class ListTasks(msgspec.Struct, frozen=True):
    show: Show = "all"
    words: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    due_before: str | None = None
    sort: SortKey = "created"
    limit: int | None = None
    ids: bool = False  # only the full IDs, one per line


class ShowTask(msgspec.Struct, frozen=True):
    refs: tuple[str, ...]


class Update(msgspec.Struct, frozen=True):
    refs: tuple[str, ...]
    status: Status | None = None
    text: str | None = None
    due: str | None = None  # "none" clears it
    tags: tuple[str, ...] | None = None  # () clears them


class Delete(msgspec.Struct, frozen=True):
    refs: tuple[str, ...]


class Export(msgspec.Struct, frozen=True):
    pass


class Import(msgspec.Struct, frozen=True):
    path: str


class SessionReset(msgspec.Struct, frozen=True):
    pass


class Completion(msgspec.Struct, frozen=True):
    shell: str


class ClusterView(msgspec.Struct, frozen=True):
    """`cluster <view> …`: its own options are read by the view's module."""

    view: str
    args: tuple[str, ...] = ()


class Help(msgspec.Struct, frozen=True):
    topic: str | None = None


class Version(msgspec.Struct, frozen=True):
    pass


class Shell(msgspec.Struct, frozen=True):
    pass


class Exit(msgspec.Struct, frozen=True):
    pass


class Clear(msgspec.Struct, frozen=True):
    pass


class Empty(msgspec.Struct, frozen=True):
    """A blank or comment line in the shell."""


class Invalid(msgspec.Struct, frozen=True):
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
