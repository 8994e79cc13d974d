"""What a caller's text may hold: no control characters, no unpaired surrogates.

A NUL in a tag reached CloudFormation and came back as raw XML in a FAILED deployment; an unpaired
surrogate (``"\\ud800"``, valid JSON escape syntax but not Unicode text) cannot even be encoded as
UTF-8 for an AWS call. Both are refused with the request, before any AWS call. Multi-line values (a
PEM certificate in a parameter) may keep tab, line feed and carriage return.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ASCII_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


def _problem(character: str) -> str:
    code = ord(character)
    if 0xD800 <= code <= 0xDFFF:
        return f"an unpaired surrogate (U+{code:04X}), which is not Unicode text"
    return f"the control character U+{code:04X}"


def single_line(value: str) -> str:
    """``value``, if it holds no control character (not even a line break) and no surrogate."""
    found = _CONTROL.search(value)
    if found is not None:
        raise ValueError(f"must not hold {_problem(found.group())} (at index {found.start()})")
    return value


def url_text(value: str) -> str:
    """``value``, if it is a URL as it travels on the wire: printable ASCII without spaces (a host in
    punycode, a path percent-encoded), with a well-formed host and port."""
    bad = next((c for c in value if not "!" <= c <= "~"), None)
    if bad is not None:
        what = _problem(bad) if _CONTROL.match(bad) else f"{bad!r} (U+{ord(bad):04X})"
        raise ValueError(
            f"must be printable ASCII without spaces (percent-encode the path, punycode the host); "
            f"found {what} at index {value.index(bad)}"
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as error:
        raise ValueError(f"is not a well-formed URL ({error})") from None
    return value


def multi_line(value: str) -> str:
    """``value``, if its only control characters are tab, line feed and carriage return."""
    found = _CONTROL_BUT_LINES.search(value)
    if found is not None:
        raise ValueError(f"must not hold {_problem(found.group())} (at index {found.start()})")
    return value


def shown(value: str) -> str:
    """``value`` as an answer may quote it: each control character or surrogate written as ``\\uXXXX``
    text, so an answer never carries what the request was refused for."""
    return _CONTROL.sub(lambda found: f"\\u{ord(found.group()):04x}", value)


def first_surrogate(value: str) -> int | None:
    """The index of ``value``'s first unpaired surrogate, if it has one."""
    found = _SURROGATE.search(value)
    return None if found is None else found.start()


def whole_number(value: object) -> object:
    """A query string's number as ASCII digits only (``int()`` would take "١٢", " 12 " and "1_2")."""
    if isinstance(value, str):
        if not _ASCII_WHOLE_NUMBER.fullmatch(value):
            raise ValueError("must be a whole number written in ASCII digits")
        return int(value)
    return value
