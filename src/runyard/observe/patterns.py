"""EventBridge event patterns: which events an event rule sends on.

A pattern mirrors the events it matches: an object whose fields are either nested patterns or leaves, a leaf
being a non-empty array of values or matchers. Every field must match (AND); a leaf matches when any of its
entries does (OR). An event field holding an array matches when any of its elements does.

Matchers: exact values (case-sensitive strings, numbers compared as numbers, null, true, false),
`{"prefix": s}` and `{"suffix": s}` (either may be `{"equals-ignore-case": s}`), `{"equals-ignore-case": s}`,
`{"anything-but": value | [values] | {"prefix"|"suffix"|"equals-ignore-case": ...}}`, `{"exists": bool}` and
`{"numeric": [op, n, (op, n)]}`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

Scalar: TypeAlias = str | int | float | bool | None
_NUMERIC_OPS = ("<", "<=", "=", ">", ">=")
_MATCHERS = ("prefix", "suffix", "equals-ignore-case", "anything-but", "exists", "numeric")


class PatternError(ValueError):
    """An event pattern that cannot be used; the message says where it is wrong."""


# -- matchers: each says whether a leaf field, given its values (none when absent), matches ----------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Scalar, b: Scalar) -> bool:
    """JSON equality: no string equals a number, no number equals true (Python's 1 == True would)."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return a == b


@dataclass(frozen=True, slots=True)
class Exact:
    value: Scalar

    def matches(self, values: list[Scalar]) -> bool:
        return any(_same(self.value, v) for v in values)


@dataclass(frozen=True, slots=True)
class Affix:
    """`prefix` (at_end False) or `suffix` (at_end True), optionally ignoring case."""

    text: str
    at_end: bool = False
    ignore_case: bool = False

    def test(self, value: Scalar) -> bool:
        if not isinstance(value, str):
            return False
        text = self.text
        if self.ignore_case:
            value, text = value.casefold(), text.casefold()
        return value.endswith(text) if self.at_end else value.startswith(text)

    def matches(self, values: list[Scalar]) -> bool:
        return any(self.test(v) for v in values)


@dataclass(frozen=True, slots=True)
class EqualsIgnoreCase:
    texts: tuple[str, ...]

    def test(self, value: Scalar) -> bool:
        return isinstance(value, str) and value.casefold() in {t.casefold() for t in self.texts}

    def matches(self, values: list[Scalar]) -> bool:
        return any(self.test(v) for v in values)


@dataclass(frozen=True, slots=True)
class AnythingBut:
    """Any value except the excluded ones; an absent field has no value, so it never matches."""

    values: tuple[Scalar, ...] = ()
    other: Affix | EqualsIgnoreCase | None = None

    def excluded(self, value: Scalar) -> bool:
        if self.other is not None:
            return self.other.test(value)
        return any(_same(value, v) for v in self.values)

    def matches(self, values: list[Scalar]) -> bool:
        return any(not self.excluded(v) for v in values)


@dataclass(frozen=True, slots=True)
class Exists:
    present: bool

    def matches(self, values: list[Scalar]) -> bool:
        return bool(values) == self.present


@dataclass(frozen=True, slots=True)
class Numeric:
    bounds: tuple[tuple[str, float], ...]  # one (op, n), or a lower bound then an upper bound

    def test(self, value: Scalar) -> bool:
        if not _is_number(value):
            return False
        number = float(value)  # type: ignore[arg-type]  # _is_number: an int or a float
        return all(_compare(number, op, bound) for op, bound in self.bounds)

    def matches(self, values: list[Scalar]) -> bool:
        return any(self.test(v) for v in values)


def _compare(value: float, op: str, bound: float) -> bool:
    if op == "<":
        return value < bound
    if op == "<=":
        return value <= bound
    if op == "=":
        return value == bound
    if op == ">":
        return value > bound
    return value >= bound


Matcher: TypeAlias = Exact | Affix | EqualsIgnoreCase | AnythingBut | Exists | Numeric


@dataclass(frozen=True, slots=True)
class Pattern:
    """A parsed pattern: per field, a nested pattern or the matchers of a leaf (any of which may match)."""

    fields: tuple[tuple[str, Pattern | tuple[Matcher, ...]], ...]


# -- parsing ---------------------------------------------------------------------------------------------


def parse_pattern(text: str) -> Pattern:
    """The pattern in `text` (JSON), or PatternError saying where it is wrong."""
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except PatternError:
        raise
    except ValueError as exc:
        raise PatternError(f"The event pattern is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise PatternError(f"An event pattern is a JSON object, not {_kind(document)}")
    return _parse_object(document, "")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise PatternError(f"The event pattern names the field {key!r} twice in one object")
        document[key] = value
    return document


def _no_constant(name: str) -> None:
    raise PatternError(f"The event pattern holds {name}, which is not a JSON number")


def _parse_object(document: dict[str, Any], path: str) -> Pattern:
    if not document:
        raise PatternError(f"{_where(path)}: an object in a pattern needs at least one field")
    fields: list[tuple[str, Pattern | tuple[Matcher, ...]]] = []
    for key, value in document.items():
        here = f"{path}.{key}" if path else key
        if key.startswith("$"):
            raise PatternError(f"{_where(here)}: the operator {key!r} is not supported")
        if isinstance(value, dict):
            fields.append((key, _parse_object(value, here)))
        elif isinstance(value, list):
            if not value:
                raise PatternError(f"{_where(here)}: a leaf is a non-empty array of values or matchers")
            fields.append((key, tuple(_parse_entry(entry, f"{here}[{i}]") for i, entry in enumerate(value))))
        else:
            raise PatternError(
                f"{_where(here)}: a pattern field is an array of values or matchers (or an object), "
                f"not {_kind(value)}; write [{json.dumps(value)}]"
            )
    return Pattern(tuple(fields))


def _parse_entry(entry: Any, path: str) -> Matcher:
    if entry is None or isinstance(entry, str | int | float | bool):
        return Exact(entry)
    if isinstance(entry, list):
        raise PatternError(f"{_where(path)}: arrays cannot be nested in a leaf")
    assert isinstance(entry, dict)
    if len(entry) != 1:
        raise PatternError(f"{_where(path)}: a matcher is an object with exactly one of {', '.join(_MATCHERS)}")
    ((name, argument),) = entry.items()
    here = f"{path}.{name}"
    if name in ("prefix", "suffix"):
        text, ignore_case = _affix(argument, here)
        return Affix(text, at_end=name == "suffix", ignore_case=ignore_case)
    if name == "equals-ignore-case":
        return EqualsIgnoreCase((_string(argument, here),))
    if name == "anything-but":
        return _anything_but(argument, here)
    if name == "exists":
        if not isinstance(argument, bool):
            raise PatternError(f"{_where(here)}: exists takes true or false, not {_kind(argument)}")
        return Exists(argument)
    if name == "numeric":
        return _numeric(argument, here)
    raise PatternError(f"{_where(path)}: unknown matcher {name!r} (known: {', '.join(_MATCHERS)})")


def _string(argument: Any, path: str) -> str:
    if not isinstance(argument, str):
        raise PatternError(f"{_where(path)}: expected a string, not {_kind(argument)}")
    return argument


def _affix(argument: Any, path: str) -> tuple[str, bool]:
    """A prefix or suffix: a string, or {"equals-ignore-case": string}."""
    if isinstance(argument, dict):
        if list(argument) != ["equals-ignore-case"]:
            raise PatternError(f'{_where(path)}: expected a string or {{"equals-ignore-case": string}}')
        return _string(argument["equals-ignore-case"], f"{path}.equals-ignore-case"), True
    return _string(argument, path), False


def _anything_but(argument: Any, path: str) -> AnythingBut:
    if isinstance(argument, dict):
        if len(argument) != 1 or next(iter(argument)) not in ("prefix", "suffix", "equals-ignore-case"):
            raise PatternError(
                f"{_where(path)}: anything-but takes an object with one of prefix, suffix or equals-ignore-case"
            )
        ((name, inner),) = argument.items()
        here = f"{path}.{name}"
        if name == "equals-ignore-case":
            texts = inner if isinstance(inner, list) else [inner]
            if not texts:
                raise PatternError(f"{_where(here)}: expected a string or a non-empty array of strings")
            return AnythingBut(other=EqualsIgnoreCase(tuple(_string(t, here) for t in texts)))
        text = _string(inner, here)
        return AnythingBut(other=Affix(text, at_end=name == "suffix"))
    values = argument if isinstance(argument, list) else [argument]
    if not values:
        raise PatternError(f"{_where(path)}: anything-but needs at least one value")
    if all(isinstance(v, str) for v in values) or all(_is_number(v) for v in values):
        return AnythingBut(values=tuple(values))
    raise PatternError(
        f"{_where(path)}: anything-but takes a string, a number, or an array of only strings or only numbers"
    )


def _numeric(argument: Any, path: str) -> Numeric:
    usage = '[op, n] or [">"|">=", low, "<"|"<=", high] with op one of < <= = > >='
    if not isinstance(argument, list) or len(argument) not in (2, 4):
        raise PatternError(f"{_where(path)}: numeric takes {usage}")
    bounds: list[tuple[str, float]] = []
    for i in range(0, len(argument), 2):
        op, number = argument[i], argument[i + 1]
        if op not in _NUMERIC_OPS:
            raise PatternError(f"{_where(path)}: {json.dumps(op)} is not a numeric operator (< <= = > >=)")
        if not _is_number(number) or not math.isfinite(number):
            raise PatternError(f"{_where(path)}: {op} needs a number, not {_kind(number)}")
        bounds.append((op, float(number)))
    if len(bounds) == 2:
        (low_op, low), (high_op, high) = bounds
        if low_op not in (">", ">=") or high_op not in ("<", "<="):
            raise PatternError(f"{_where(path)}: a numeric range is {usage}")
        if low > high:
            raise PatternError(f"{_where(path)}: the range's lower bound {low:g} is above its upper bound {high:g}")
    return Numeric(tuple(bounds))


def _where(path: str) -> str:
    return f"In the event pattern at {path}" if path else "In the event pattern"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "an object"


# -- matching --------------------------------------------------------------------------------------------


def matches(pattern: Pattern, event: Mapping[str, Any]) -> bool:
    """Whether `event` (a decoded JSON object) matches `pattern`."""
    for key, rule in pattern.fields:
        found = list(_flatten(event[key])) if key in event else []
        if isinstance(rule, Pattern):
            objects = [value for value in found if isinstance(value, Mapping)]
            # A missing object still lets its fields be tested: `{"exists": false}` inside it matches.
            if not any(matches(rule, obj) for obj in objects or [{}]):
                return False
        else:
            leaves = [value for value in found if not isinstance(value, Mapping)]
            if not any(matcher.matches(leaves) for matcher in rule):
                return False
    return True


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _flatten(item)
    else:
        yield value
