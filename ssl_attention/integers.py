"""Whole numbers a user types (flags, config values, environment variables): ASCII digits, no traceback.

Python's own tests accept more than a user means: ``'²'.isdigit()`` is true but ``int('²')`` raises,
``int()`` takes Arabic-Indic digits, ``_`` separators and signs, and a number of thousands of digits
raises a ValueError of its own (Python's int-string limit). ``whole_number`` takes exactly the digits
0-9 (spaces around them allowed) and never converts more than ``MAX_DIGITS`` of them, so each caller
compares the value against its own bounds and says what is wrong in one line.
"""

from __future__ import annotations

MAX_DIGITS = 18  # significant digits: more is beyond every bound any setting has (and int() stays cheap)
TOO_LARGE = 10**MAX_DIGITS  # what whole_number gives for a longer number


def whole_number(text: str) -> int | None:
    """``text`` as a non-negative whole number, or None unless it is only ASCII digits (spaces around
    them allowed); a number of more than ``MAX_DIGITS`` significant digits is ``TOO_LARGE``."""
    digits = text.strip()
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    digits = digits.lstrip("0") or "0"
    return TOO_LARGE if len(digits) > MAX_DIGITS else int(digits)


def shown(text: str, limit: int = 24) -> str:
    """``text`` quoted for an error message, cut to ``limit`` characters (a 5,000-digit number stays short)."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"
