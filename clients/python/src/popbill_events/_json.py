"""JSON read and written the way the Rust crate's serde_json does, so that
the three decoders agree byte for byte (tests/vectors/README.md).

Reading: numbers keep serde_json's kinds (an integer token that fits i64,
or u64 when positive, is an int; anything else, ``-0`` included, a float),
a number out of float range, ``NaN``/``Infinity``, a lone surrogate escape
and nesting of 128 levels are errors, as they are for serde_json.

Writing (the canonical form): compact, keys sorted by code point, strings
escaped as serde_json escapes them, floats in serde_json's shortest form.
"""

from __future__ import annotations

import json
import math
from typing import Any

# serde_json's recursion limit: the 128th nested container fails.
MAX_DEPTH = 127

_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1


class JsonError(ValueError):
    """Not JSON as serde_json reads it; ``too_deep`` tells the two apart."""

    def __init__(self, message: str, too_deep: bool = False):
        super().__init__(message)
        self.too_deep = too_deep


def _float(token: str) -> float:
    value = float(token)
    if math.isinf(value):
        raise JsonError("number out of range")
    return value


def _int(token: str) -> Any:
    if token == "-0":
        # serde_json reads -0 as the float -0.0.
        return -0.0
    value = int(token)
    if _I64_MIN <= value <= _U64_MAX:
        return value
    return _float(token)


def _constant(name: str) -> Any:
    raise JsonError(f"not JSON: {name}")


def loads(text: str) -> Any:
    """Parses ``text`` as serde_json would, or raises JsonError."""
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError as e:
        raise JsonError("recursion limit exceeded", too_deep=True) from e
    except JsonError:
        raise
    except ValueError as e:
        # serde_json reads in order and stops at the first of its errors: a
        # truncated deeply nested body ("[" * 200) is too deep there, since
        # the 128th level comes before the end. Python reports the end.
        pos = getattr(e, "pos", None)
        deep = _too_deep_at(text)
        if deep is not None and (pos is None or deep < pos):
            raise JsonError("recursion limit exceeded", too_deep=True) from e
        raise JsonError(str(e)) from e
    _check(value, "\\u" in text)
    return value


def _too_deep_at(text: str) -> Any:
    """Where the text (read as JSON up to there) opens its 128th nested
    container, outside strings; None when it never does."""
    depth = 0
    in_string = escaped = False
    for i, c in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return i
        elif c in "]}":
            depth -= 1
    return None


def _check(root: Any, escapes: bool) -> None:
    """Depth, and (when the text has \\u escapes) lone surrogates, which
    Python accepts and serde_json does not. Iterative: no recursion."""
    stack = [(root, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth + 1 > MAX_DEPTH:
                raise JsonError("recursion limit exceeded", too_deep=True)
            for k, v in value.items():
                if escapes:
                    _text(k)
                stack.append((v, depth + 1))
        elif isinstance(value, list):
            if depth + 1 > MAX_DEPTH:
                raise JsonError("recursion limit exceeded", too_deep=True)
            stack.extend((v, depth + 1) for v in value)
        elif escapes and isinstance(value, str):
            _text(value)


def _text(s: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise JsonError("lone surrogate in a string") from e


def format_float(f: float) -> str:
    """serde_json's text of an f64: the shortest digits that read back as
    ``f``, in fixed notation when the decimal exponent is within
    [-5, 16), else ``d.ddde±x``."""
    if f == 0:
        return "-0.0" if math.copysign(1.0, f) < 0 else "0.0"
    sign = "-" if f < 0 else ""
    r = repr(abs(f))  # Python's repr is the shortest round-trip text.
    mantissa, _, exp = r.partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    exp10 = (int(exp) if exp else 0) - len(frac)
    trimmed = digits.rstrip("0")
    exp10 += len(digits) - len(trimmed)
    digits = trimmed
    n = len(digits)
    kk = n + exp10  # 10^(kk-1) <= |f| < 10^kk
    if 0 <= exp10 and kk <= 16:
        body = digits + "0" * exp10 + ".0"
    elif 0 < kk <= 16:
        body = digits[:kk] + "." + digits[kk:]
    elif -5 < kk <= 0:
        body = "0." + "0" * (-kk) + digits
    else:
        e = kk - 1
        body = digits[0] + ("." + digits[1:] if n > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + body


def _string(s: str) -> str:
    # Python's escaping with ensure_ascii=False is serde_json's: \" \\ \b
    # \f \n \r \t, other controls as \u00xx (lower-case), the rest as is.
    return json.dumps(s, ensure_ascii=False)


def dumps(value: Any) -> str:
    """The canonical text of ``value`` (dicts, lists, str, int, float, bool,
    None)."""
    out: list[str] = []
    _write(out, value)
    return "".join(out)


def _write(out: list[str], v: Any) -> None:
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        out.append(format_float(v))
    elif isinstance(v, str):
        out.append(_string(v))
    elif isinstance(v, dict):
        out.append("{")
        # Python orders str by code point, as Rust orders UTF-8 bytes.
        for i, k in enumerate(sorted(v)):
            if i:
                out.append(",")
            out.append(_string(k))
            out.append(":")
            _write(out, v[k])
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _write(out, item)
        out.append("]")
    else:
        raise TypeError(f"not a JSON value: {type(v).__name__}")
