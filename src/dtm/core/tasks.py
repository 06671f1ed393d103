"""Tasks: their text, their IDs, how a typed reference finds one, and how a list is ordered.

Rule: a task ID is 12 characters of lowercase Crockford base32 drawn from injected randomness; a
reference is a full ID or a prefix of at least 4 characters that must match exactly one task; a
text is free of control characters, stripped, non-empty and at most 1,000 characters; a list
shows open and completed tasks apart, each oldest first (creation time, then ID); a due date is a
calendar day and a task is overdue when it is open and its day is before today; a tag is a
``+word`` of lowercase letters, digits, ``_ . -`` (a task has at most 20).

Everything here is pure: the caller passes the time (milliseconds since the epoch), today's date
and the random bytes in.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import msgspec

from dtm.core.keys import MAX_KEY_LEN
from dtm.errors import ErrAmbiguousID, ErrNoDataFound, ErrPayloadTooLarge, ErrSyntaxInvalidArgs
from dtm.wire import Task, TaskValue, UpdateTask

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase
ID_LEN = 12
ID_BITS = 5 * ID_LEN  # 60 bits of randomness
ENTROPY_BYTES = 8  # random bytes one ID needs (the top 60 of 64 bits are used)
MIN_PREFIX = 4
MAX_TEXT = 1000
MAX_CANDIDATES = 10  # an ambiguous reference lists at most this many matching IDs
MAX_TAGS = 20
MAX_TAG_LEN = 32

Status = Literal["open", "complete"]

_ALIASES = str.maketrans({"o": "0", "i": "1", "l": "1"})  # Crockford's typing-error aliases
# Every character a key may hold, in byte order (see dtm.core.keys).
_KEY_CHARS = "".join(sorted("-._:0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))


# ---------------------------------------------------------------- IDs


def new_task_id(entropy: bytes) -> str:
    """A fresh task ID from ``ENTROPY_BYTES`` random bytes (the shell passes token_bytes)."""
    if len(entropy) != ENTROPY_BYTES:
        raise ValueError(f"a task ID needs {ENTROPY_BYTES} random bytes, got {len(entropy)}")
    n = int.from_bytes(entropy, "big") >> (8 * ENTROPY_BYTES - ID_BITS)
    chars = []
    for _ in range(ID_LEN):
        chars.append(ALPHABET[n & 31])
        n >>= 5
    return "".join(reversed(chars))


def is_task_id(key: str) -> bool:
    """True for a well-formed full task ID."""
    return len(key) == ID_LEN and not key.strip(ALPHABET)


def normalize_ref(ref: str) -> str:
    """A typed reference as a lowercase ID prefix, or ErrSyntaxInvalidArgs saying what is wrong.

    Case is ignored; Crockford's aliases are accepted (``o`` reads ``0``, ``i`` and ``l`` ``1``).
    """
    shown = ref if len(ref) <= 40 else ref[:40] + "…"
    norm = ref.strip().lower().translate(_ALIASES)
    if len(norm) < MIN_PREFIX:
        raise ErrSyntaxInvalidArgs(
            f"task ID {shown!r} is too short: give at least {MIN_PREFIX} characters of the ID"
        )
    if len(norm) > ID_LEN:
        raise ErrSyntaxInvalidArgs(f"task ID {shown!r} is too long: IDs have {ID_LEN} characters")
    if norm.strip(ALPHABET):
        raise ErrSyntaxInvalidArgs(
            f"task ID {shown!r} is not an ID: IDs use only the characters {ALPHABET}"
        )
    return norm


def scan_bound(prefix: str) -> str:
    """The greatest valid key below every key that starts with ``prefix``.

    Scanning keys ``> scan_bound(prefix)`` in byte order starts exactly at the first key with that
    prefix: the bound is the prefix with its last character lowered by one and padded with the
    highest key character up to the longest key, so no valid key falls between it and the prefix.
    """
    if not prefix or any(c not in _KEY_CHARS for c in prefix) or len(prefix) > MAX_KEY_LEN:
        raise ValueError(f"not a key prefix: {prefix!r}")
    i = _KEY_CHARS.index(prefix[-1])
    if i == 0:  # the lowest key character: the prefix without it is already just below
        return prefix[:-1] if len(prefix) > 1 else ""
    lowered = prefix[:-1] + _KEY_CHARS[i - 1]
    return lowered + _KEY_CHARS[-1] * (MAX_KEY_LEN - len(lowered))


def ambiguous(ref: str, candidates: Sequence[str], more: bool = False) -> ErrAmbiguousID:
    """The error for a prefix that matches several tasks; it carries the matching IDs."""
    listed = ", ".join(candidates) + (", …" if more else "")
    return ErrAmbiguousID(
        f"task ID {ref!r} is ambiguous: it matches {listed}; type more characters",
        tuple(candidates),
    )


class Resolved(msgspec.Struct, frozen=True):
    """A reference that matched exactly one task."""

    id: str


def resolve_ref(ref: str, prefix: str, matching: Sequence[str], more: bool = False) -> Resolved:
    """Which task ``prefix`` (the normalised ``ref``) names among the IDs that start with it.

    ``more`` says the scan stopped before it saw every match. None -> ErrNoDataFound; more than
    one -> ErrAmbiguousID naming the candidates.
    """
    found = sorted({i for i in matching if i.startswith(prefix)})
    if not found:
        raise ErrNoDataFound(f"no task with ID {ref!r}")
    if len(found) == 1 and not more:
        return Resolved(found[0])
    raise ambiguous(ref, found[:MAX_CANDIDATES], more or len(found) > MAX_CANDIDATES)


def short_ids(ids: Iterable[str], minimum: int = MIN_PREFIX) -> dict[str, str]:
    """Each ID's shortest prefix (at least ``minimum`` characters) that no other ID shares."""
    ordered = sorted(set(ids))
    need = [minimum] * len(ordered)
    for k in range(len(ordered) - 1):
        a, b = ordered[k], ordered[k + 1]
        common = _common_prefix_len(a, b)
        need[k] = max(need[k], common + 1)
        need[k + 1] = max(need[k + 1], common + 1)
    return {i: i[: min(n, len(i))] for i, n in zip(ordered, need, strict=True)}


def _common_prefix_len(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


# ---------------------------------------------------------------- text


def check_text(text: str) -> str:
    """The text to store: no control chars anywhere, stripped, non-empty, at most MAX_TEXT."""
    for pos, c in enumerate(text):
        cat = unicodedata.category(c)
        if cat == "Cc":
            raise ErrSyntaxInvalidArgs(
                f"the task text has a control character (U+{ord(c):04X}) at position {pos + 1}: "
                "tabs, newlines and other control characters are not allowed"
            )
        if cat == "Cs":
            raise ErrSyntaxInvalidArgs(
                f"the task text has a lone surrogate (U+{ord(c):04X}) at position {pos + 1}"
            )
    t = text.strip()
    if not t:
        raise ErrSyntaxInvalidArgs("the task text is empty")
    if len(t) > MAX_TEXT:
        raise ErrPayloadTooLarge(f"the task text is {len(t)} characters; the limit is {MAX_TEXT}")
    return t


# ---------------------------------------------------------------- values and times


def iso_ms(now_ms: int) -> str:
    """UTC ISO 8601 with milliseconds, e.g. ``2026-01-02T03:04:05.678Z``."""
    return _iso_second(now_ms // 1000) + f"{now_ms % 1000:03d}Z"


@functools.lru_cache(maxsize=8)
def _iso_second(now_s: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.`` of a Unix second (kept: every write of a second shares it)."""
    return datetime.fromtimestamp(now_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def new_value(
    text: str, now_ms: int, due: str | None = None, tags: Sequence[str] = ()
) -> TaskValue:
    """The row value of a task created now with ``text``, ``due`` and ``tags`` (checked here)."""
    t = iso_ms(now_ms)
    return TaskValue(
        text=check_text(text),
        status="open",
        created=t,
        updated=t,
        due=None if due is None else check_due(due),
        tags=check_tags(tags),
    )


def check_update(update: UpdateTask) -> UpdateTask:
    """The update with its fields checked; ErrSyntaxInvalidArgs when it changes nothing."""
    fields = (update.status, update.text, update.due, update.tags)
    if all(f is None for f in fields):
        raise ErrSyntaxInvalidArgs(
            "an update needs a status ('open' or 'complete'), a text, a due date or tags"
        )
    return UpdateTask(
        status=update.status,
        text=None if update.text is None else check_text(update.text),
        due=None if update.due is None else (check_due(update.due) if update.due else ""),
        tags=None if update.tags is None else check_tags(update.tags),
    )


def apply_update(value: TaskValue, update: UpdateTask, now_ms: int) -> TaskValue | None:
    """The value after ``update`` (already checked), or None when it would change nothing."""
    text = value.text if update.text is None else update.text
    status: Status = value.status if update.status is None else update.status
    due = value.due if update.due is None else (update.due or None)
    tags = value.tags if update.tags is None else list(update.tags)
    if (text, status, due, tags) == (value.text, value.status, value.due, value.tags):
        return None
    return TaskValue(
        text=text,
        status=status,
        created=value.created,
        updated=iso_ms(now_ms),
        due=due,
        tags=tags,
    )


def to_task(task_id: str, value: TaskValue) -> Task:
    """The API form of a stored task."""
    return Task(
        id=task_id,
        text=value.text,
        status=value.status,
        created=value.created,
        updated=value.updated,
        due=value.due,
        tags=list(value.tags),
    )


def value_of(task: Task) -> TaskValue:
    """The stored form of an API task."""
    return TaskValue(
        text=task.text,
        status=task.status,
        created=task.created,
        updated=task.updated,
        due=task.due,
        tags=list(task.tags),
    )


def split_and_order(tasks: Iterable[Task]) -> tuple[list[Task], list[Task]]:
    """Open and completed tasks, each oldest first (creation time, then ID)."""
    ordered = sorted(tasks, key=lambda t: (t.created, t.id))
    return (
        [t for t in ordered if t.status == "open"],
        [t for t in ordered if t.status == "complete"],
    )


# ---------------------------------------------------------------- due dates and tags


def check_due(text: str) -> str:
    """A due date as stored: a real calendar day ``YYYY-MM-DD``."""
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ErrSyntaxInvalidArgs(
            f"due date {text[:40]!r} is not a day like 2026-12-31 (or today, tomorrow, +3d, +2w)"
        ) from None


def parse_due(word: str, today: date) -> str:
    """A typed due date: ``YYYY-MM-DD``, ``today``, ``tomorrow``, ``+Nd`` or ``+Nw``."""
    w = word.strip().lower()
    if w == "today":
        return today.isoformat()
    if w == "tomorrow":
        return (today + timedelta(days=1)).isoformat()
    if len(w) >= 3 and w[0] == "+" and w[-1] in "dw" and w[1:-1].isdigit():
        n = int(w[1:-1]) * (7 if w[-1] == "w" else 1)
        if n > 100_000:
            raise ErrSyntaxInvalidArgs(f"due date {word!r} is too far away")
        return (today + timedelta(days=n)).isoformat()
    return check_due(w)


def is_overdue(task: Task, today: date) -> bool:
    """An open task whose due day is before today."""
    return task.status == "open" and task.due is not None and task.due < today.isoformat()


_TAG_START = "abcdefghijklmnopqrstuvwxyz"
_TAG_CHARS = frozenset(_TAG_START + "0123456789_.-")


def check_tag(word: str) -> str:
    """A tag as stored: lowercase, ``[a-z][a-z0-9_.-]*``, at most MAX_TAG_LEN characters."""
    tag = word.removeprefix("+").lower()
    if not tag or tag[0] not in _TAG_START or not set(tag) <= _TAG_CHARS:
        raise ErrSyntaxInvalidArgs(
            f"tag {word[:40]!r} is not a tag: a letter, then letters, digits, _ . or -"
        )
    if len(tag) > MAX_TAG_LEN:
        raise ErrSyntaxInvalidArgs(f"tag {word[:40]!r} is longer than {MAX_TAG_LEN} characters")
    return tag


def check_tags(tags: Iterable[str]) -> list[str]:
    """Each tag checked, duplicates dropped (first kept), at most MAX_TAGS."""
    out: list[str] = []
    for t in tags:
        tag = check_tag(t)
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise ErrSyntaxInvalidArgs(f"a task has at most {MAX_TAGS} tags, not {len(out)}")
    return out


def is_tag_word(word: str) -> bool:
    """A typed ``+tag`` (any case): ``+shop`` is a tag, ``+1`` and ``+shop!`` stay text."""
    tag = word[1:].lower()
    return (
        word[:1] == "+"
        and 0 < len(tag) <= MAX_TAG_LEN
        and tag[0] in _TAG_START
        and set(tag) <= _TAG_CHARS
    )


def split_tags(text: str) -> tuple[str, list[str]]:
    """The text without its ``+tag`` words, and those tags (checked)."""
    words = text.split(" ")
    tags = [w for w in words if is_tag_word(w)]
    if not tags:
        return text, []
    rest = " ".join(w for w in words if not is_tag_word(w))
    return " ".join(rest.split()), check_tags(tags)


# ---------------------------------------------------------------- listing


Show = Literal["open", "complete", "all"]
SortKey = Literal["created", "due", "text"]
SORT_KEYS: tuple[SortKey, ...] = ("created", "due", "text")


class Query(msgspec.Struct, frozen=True):
    """Which tasks a list shows: every condition must hold."""

    show: Show = "all"
    words: tuple[str, ...] = ()  # each must appear in the text (case ignored)
    tags: tuple[str, ...] = ()  # each must be one of the task's tags
    due_before: str | None = None  # a due date before this day
    sort: SortKey = "created"
    limit: int | None = None  # at most this many of each section


def _sort_key(sort: SortKey) -> Callable[[Task], tuple[str, ...]]:
    if sort == "due":  # tasks without a due date last
        return lambda t: ("0" if t.due else "1", t.due or "", t.created, t.id)
    if sort == "text":
        return lambda t: (t.text.casefold(), t.created, t.id)
    return lambda t: (t.created, t.id)


def matches(task: Task, q: Query) -> bool:
    """Does ``task`` meet every condition of ``q``?"""
    if q.show != "all" and task.status != q.show:
        return False
    folded = task.text.casefold()
    if any(w.casefold() not in folded for w in q.words):
        return False
    if any(t not in task.tags for t in q.tags):
        return False
    return q.due_before is None or (task.due is not None and task.due < q.due_before)


def select(
    open_: Sequence[Task], complete: Sequence[Task], q: Query
) -> tuple[list[Task], list[Task]]:
    """The open and the completed tasks ``q`` shows, each in its order and cut to its limit."""
    key = _sort_key(q.sort)
    sections: list[list[Task]] = []
    for status, rows in (("open", open_), ("complete", complete)):
        if q.show not in ("all", status):
            sections.append([])
            continue
        kept = sorted((t for t in rows if matches(t, q)), key=key)
        sections.append(kept if q.limit is None else kept[: q.limit])
    return sections[0], sections[1]
