"""A small interpreter for Xero's `where` filter (`Name=="ABC" && Status!="DELETED"`, `Name.Contains("x")`,
`Date >= DateTime(2024, 01, 01)`, `ContactID == GUID("…")`, `AND`/`OR`, `!`, `null`).

Besides the predicate, parsing yields a `Plan`: which equality look-ups any matching row must satisfy
(`InvoiceNumber=="A" OR InvoiceNumber=="B"` → one of two numbers). A list endpoint answers the plan from its
indexes, so the shapes clients use for look-ups cost O(hits) instead of a scan of every document; the predicate
is still applied to those candidates, so the plan only has to be a superset, never exact."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from include.xero_emulator.errors import HttpError

_ESCAPED = re.compile(r"\\(.)", re.DOTALL)   # a backslash keeps the character after it (quotes, backslashes)
_TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|>=|<=|&&|\|\||[<>!().,=])
                    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*))""", re.VERBOSE)
DATE_FIELDS = {"Date", "DueDate", "FullyPaidOnDate", "ExpectedPaymentDate", "PlannedPaymentDate"}
Predicate = Callable[[dict], bool]
Operand = Callable[[dict], Any]


@dataclass(frozen=True)
class Eq:
    """A matching row has `field` (a lower-case dotted path) equal to `value` (lower-case)."""

    field: str
    value: str


@dataclass(frozen=True)
class AnyOf:
    """A matching row satisfies at least one of the plans (an OR)."""

    parts: tuple[Plan, ...]


@dataclass(frozen=True)
class AllOf:
    """A matching row satisfies every plan (an AND); the narrowest answerable one is enough."""

    parts: tuple[Plan, ...]


Plan = Eq | AnyOf | AllOf | None      # None: nothing known, every row is a candidate


@dataclass(frozen=True)
class Where:
    predicate: Predicate
    plan: Plan


@dataclass(frozen=True)
class _Term:
    """An operand with what the planner may know of it: a plain field path, or a literal value."""

    fn: Operand
    field: str | None = None
    literal: str | None = None


def _bad(where: str) -> HttpError:
    return HttpError(400, {"ErrorNumber": 16, "Type": "QueryParseException",
                           "Message": f"Unable to parse the where clause: {where}"})


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise _bad(text)
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1].upper() != value.upper()):
            raise _bad(self.text)
        self.i += 1
        return tok

    def parse(self) -> Where:
        where = self.or_expr()
        if self.peek() is not None:
            raise _bad(self.text)
        return where

    def or_expr(self) -> Where:
        parts = [self.and_expr()]
        while (tok := self.peek()) and tok[1].upper() in {"||", "OR"}:
            self.take()
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        preds = [p.predicate for p in parts]
        plan = None if any(p.plan is None for p in parts) else AnyOf(tuple(p.plan for p in parts))
        return Where(lambda o: any(p(o) for p in preds), plan)

    def and_expr(self) -> Where:
        parts = [self.unary()]
        while (tok := self.peek()) and tok[1].upper() in {"&&", "AND"}:
            self.take()
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        preds = [p.predicate for p in parts]
        known = tuple(p.plan for p in parts if p.plan is not None)
        return Where(lambda o: all(p(o) for p in preds), AllOf(known) if known else None)

    def unary(self) -> Where:
        tok = self.peek()
        if tok and tok[1] in {"!"} or (tok and tok[1].upper() == "NOT"):
            self.take()
            inner = self.unary().predicate
            return Where(lambda o: not inner(o), None)
        if tok and tok[1] == "(":
            self.take("(")
            inner = self.or_expr()
            self.take(")")
            return inner
        return self.comparison()

    def comparison(self) -> Where:
        left = self.operand()
        tok = self.peek()
        if tok and tok[1] in {"==", "!=", ">=", "<=", ">", "<", "="}:
            op = self.take()[1]
            right = self.operand()
            return Where(lambda o: _compare(op, left.fn(o), right.fn(o)), _equality_plan(op, left, right))
        return Where(lambda o: bool(left.fn(o)), None)

    def operand(self) -> _Term:
        kind, value = self.take()
        if kind == "str":
            text = _ESCAPED.sub(lambda m: m.group(1), value[1:-1])
            return _Term(lambda o: text, literal=text)
        if kind == "num":
            number = float(value)
            return _Term(lambda o: number)
        if kind != "ident":
            raise _bad(self.text)
        upper = value.upper()
        if upper in {"TRUE", "FALSE"}:
            return _Term(lambda o: upper == "TRUE")
        if upper == "NULL":
            return _Term(lambda o: None)
        calls = self.peek() is not None and self.peek()[1] == "("
        if upper == "GUID" and calls:
            self.take("(")
            guid = self.take()[1].strip('"')
            self.take(")")
            return _Term(lambda o: guid, literal=guid)
        if upper in {"DATETIME", "DATE"} and calls:
            return self.moment()
        return self.path(value)

    def moment(self) -> _Term:
        self.take("(")
        parts = [int(self.take()[1])]
        while self.peek() and self.peek()[1] == ",":
            self.take(",")
            parts.append(int(self.take()[1]))
        self.take(")")
        moment = datetime(*parts, tzinfo=UTC) if len(parts) > 3 else date(*parts)
        return _Term(lambda o: moment)

    def path(self, first: str) -> _Term:
        path = [first]
        method: tuple[str, Any] | None = None
        while self.peek() and self.peek()[1] == ".":
            self.take(".")
            name = self.take()[1]
            if self.peek() and self.peek()[1] == "(":
                self.take("(")
                arg = self.take()[1].strip('"') if self.peek() and self.peek()[1] != ")" else None
                self.take(")")
                method = (name.upper(), arg)
                break
            path.append(name)
        field = ".".join(path).lower() if method is None else None
        return _Term(_accessor(path, method), field=field)


def _equality_plan(op: str, left: _Term, right: _Term) -> Plan:
    """`Field == "text"` (either way round, GUID(…) included) is an equality an index can answer."""
    if op not in {"==", "="}:
        return None
    for field_side, value_side in ((left, right), (right, left)):
        if field_side.field and value_side.literal is not None:
            return Eq(field_side.field, value_side.literal.lower())
    return None


def _resolve(obj: Any, path: list[str]) -> Any:
    for name in path:
        if not isinstance(obj, dict):
            return None
        match = next((k for k in obj if k.lower() == name.lower()), None)
        obj = obj.get(match) if match else None
    if path[-1] in DATE_FIELDS and isinstance(obj, str):
        return date.fromisoformat(obj[:10])
    if path[-1] == "UpdatedDateUTC" and isinstance(obj, int):
        return datetime.fromtimestamp(obj / 1000, tz=UTC)
    return obj


def _accessor(path: list[str], method: tuple[str, Any] | None) -> Callable[[dict], Any]:
    if method is None:
        return lambda o: _resolve(o, path)
    name, arg = method
    needle = (arg or "").lower()
    ops: dict[str, Callable[[str], Any]] = {
        "CONTAINS": lambda s: needle in s.lower(),
        "STARTSWITH": lambda s: s.lower().startswith(needle),
        "ENDSWITH": lambda s: s.lower().endswith(needle),
        "TOLOWER": lambda s: s.lower(),
        "TOUPPER": lambda s: s.upper(),
    }
    if name not in ops:
        raise HttpError(400, {"ErrorNumber": 16, "Type": "QueryParseException",
                              "Message": f"No method '{name}' exists"})
    fn = ops[name]

    def call(o: dict) -> Any:
        value = _resolve(o, path)
        return fn(value) if isinstance(value, str) else (False if name in {"CONTAINS", "STARTSWITH",
                                                                              "ENDSWITH"} else None)
    return call


def _normalise(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, datetime) and isinstance(b, date) and not isinstance(b, datetime):
        return a.date(), b
    if isinstance(b, datetime) and isinstance(a, date) and not isinstance(a, datetime):
        return a, b.date()
    if isinstance(a, str) and isinstance(b, str):
        return a.lower(), b.lower()
    if isinstance(a, bool) or isinstance(b, bool):
        return a, b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a), float(b)
    return a, b


def _compare(op: str, a: Any, b: Any) -> bool:
    a, b = _normalise(a, b)
    if op in {"==", "="}:
        return a == b
    if op == "!=":
        return a != b
    if a is None or b is None:
        return False
    try:
        return {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[op]
    except TypeError:
        return False


def parse_where(where: str) -> Where:
    """The predicate of a `where` filter and the index plan any matching row satisfies."""
    return _Parser(where).parse()


def compile_where(where: str) -> Predicate:
    return parse_where(where).predicate
