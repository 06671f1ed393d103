"""What a valid key is.

Rule: a key is 1–128 characters of ``[A-Za-z0-9._:-]``.
"""

from __future__ import annotations

import re

from dtm.errors import ErrSyntaxInvalidArgs

MAX_KEY_LEN = 128
_KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def is_valid_key(key: str) -> bool:
    """True for a well-formed key."""
    return _KEY.fullmatch(key) is not None


def check_key(key: str) -> str:
    """Return ``key`` or raise ErrSyntaxInvalidArgs naming the rule."""
    if not is_valid_key(key):
        shown = key if len(key) <= 40 else key[:40] + "…"
        raise ErrSyntaxInvalidArgs(
            f"invalid key {shown!r}: use 1-{MAX_KEY_LEN} characters of A-Z a-z 0-9 . _ : -"
        )
    return key
