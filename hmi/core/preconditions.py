"""Step preconditions: tag conditions written as text in procedure files.

``BR101.TEMP_PV within 0.5 of BR101.TEMP_SP and MIC1.StageReady == true`` is
read by a small tokenizer and parser, never by ``eval``: a procedure file is
configuration an engineer edits, and nothing in it may run as code. A
condition is judged only on GOOD values; a value that is BAD or UNCERTAIN is
*not known*, so the condition is false and says so, because a step must not
be completed on a reading nobody can trust.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from hmi.core.tags import Quality, TagScalar, TagValue

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![A-Za-z0-9_.])"
    r"|(?P<op>==|!=|>=|<=|>|<)"
    r"|(?P<str>\"[^\"]*\")"
    r"|(?P<name>[A-Za-z][A-Za-z0-9_.\-]*))"
)
_KEYWORDS = frozenset({"and", "within", "of", "true", "false"})
Literal = bool | float | str
Reader = Callable[[str], TagValue]


class ConditionSyntaxError(ValueError):
    """The text is not a condition; the message says where and what was expected."""


@dataclass(frozen=True, slots=True)
class Tag:
    name: str


Operand = Tag | Literal


@dataclass(frozen=True, slots=True)
class Comparison:
    left: Tag
    op: str
    right: Operand
    tolerance: float | None = None
    """For ``within``: the largest allowed difference (``op`` is then ``within``)."""

    def text(self) -> str:
        right = _show(self.right)
        if self.tolerance is not None:
            return f"{self.left.name} within {self.tolerance:g} of {right}"
        return f"{self.left.name} {self.op} {right}"


@dataclass(frozen=True, slots=True)
class Condition:
    """Comparisons joined by ``and``; true only when every one is."""

    source: str
    parts: tuple[Comparison, ...]

    def tags(self) -> set[str]:
        names = {c.left.name for c in self.parts}
        return names | {c.right.name for c in self.parts if isinstance(c.right, Tag)}


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str
    """For a false condition: what is not met, in words; empty when met."""


def _show(value: Operand) -> str:
    if isinstance(value, Tag):
        return value.name
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return f'"{value}"'


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ConditionSyntaxError(f"cannot read {text[pos:].strip()!r} (at character {pos})")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "name" and value in _KEYWORDS:
            kind = value
        out.append((kind, value))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take(self, *kinds: str, expected: str) -> tuple[str, str]:
        token = self._peek()
        if token is None or token[0] not in kinds:
            found = f"{token[1]!r}" if token else "the end"
            raise ConditionSyntaxError(f"expected {expected}, found {found}")
        self.i += 1
        return token

    def _operand(self) -> Operand:
        kind, value = self._take(
            "name", "num", "str", "true", "false", expected="a tag name or a value"
        )
        if kind == "name":
            return Tag(value)
        if kind == "num":
            return float(value)
        if kind == "str":
            return value[1:-1]
        return kind == "true"

    def _comparison(self) -> Comparison:
        _, name = self._take("name", expected="a tag name")
        kind, value = self._take("op", "within", expected="a comparison (== != > >= < <= within)")
        if kind == "within":
            _, tol = self._take("num", expected="a tolerance (a number)")
            if float(tol) < 0:
                raise ConditionSyntaxError("a tolerance cannot be negative")
            self._take("of", expected="'of'")
            right = self._operand()
            if isinstance(right, bool | str):
                raise ConditionSyntaxError("'within' compares numbers")
            return Comparison(Tag(name), "within", right, float(tol))
        right = self._operand()
        if value not in ("==", "!=") and isinstance(right, bool | str):
            raise ConditionSyntaxError(f"{value} compares numbers, not {_show(right)}")
        return Comparison(Tag(name), value, right)

    def parse(self) -> Condition:
        if not self.tokens:
            raise ConditionSyntaxError("the condition is empty")
        parts = [self._comparison()]
        while self._peek() is not None:
            self._take("and", expected="'and' or the end")
            parts.append(self._comparison())
        return Condition(self.text.strip(), tuple(parts))


def parse_condition(text: str, known_tags: Collection[str] | None = None) -> Condition:
    """Parse ``text``; with ``known_tags``, every tag it names must be one of them."""
    condition = _Parser(text).parse()
    if known_tags is not None:
        unknown = sorted(condition.tags() - set(known_tags))
        if unknown:
            raise ConditionSyntaxError(
                f"unknown tag {', '.join(map(repr, unknown))}; tags.toml defines the tags"
            )
    return condition


def _known(read: Reader, name: str) -> tuple[TagScalar | None, str]:
    try:
        value = read(name)
    except KeyError:
        return None, f"{name} is not a tag of this plant"
    if value.quality is not Quality.GOOD or value.value is None:
        why = f": {value.reason}" if value.reason else ""
        return None, f"{name} is not known ({value.quality.value}{why})"
    return value.value, ""


def _number(value: TagScalar | Literal) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _compare(left: TagScalar, op: str, right: TagScalar | Literal) -> bool | None:
    a, b = _number(left), _number(right)
    if op == "==":
        return a == b if a is not None and b is not None else left == right
    if op == "!=":
        return a != b if a is not None and b is not None else left != right
    if a is None or b is None:
        return None
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


def evaluate(condition: Condition, read: Reader) -> Verdict:
    """Judge ``condition`` on current values; the first unmet part gives the reason."""
    for part in condition.parts:
        left, why = _known(read, part.left.name)
        if left is None:
            return Verdict(False, why)
        right: TagScalar | Literal
        if isinstance(part.right, Tag):
            known, why = _known(read, part.right.name)
            if known is None:
                return Verdict(False, why)
            right = known
        else:
            right = part.right
        shown = f"{part.left.name} is {_show(_literal(left))}"
        if part.tolerance is not None:
            a, b = _number(left), _number(right)
            if a is None or b is None:
                return Verdict(False, f"{part.text()}: the values are not numbers")
            if abs(a - b) > part.tolerance:
                return Verdict(False, f"{shown}, not {part.text()} ({_show(float(b))})")
            continue
        result = _compare(left, part.op, right)
        if result is None:
            return Verdict(False, f"{part.text()}: {part.left.name} is not a number")
        if not result:
            return Verdict(False, f"{shown}; needed: {part.text()}")
    return Verdict(True, "")


def _literal(value: TagScalar) -> Literal:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
