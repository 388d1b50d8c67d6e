"""A small interpreter for Xero's `where` filter (`Name=="ABC" && Status!="DELETED"`, `Name.Contains("x")`,
`Date >= DateTime(2024, 01, 01)`, `ContactID == GUID("…")`, `AND`/`OR`, `!`, `null`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from include.xero_emulator.errors import HttpError

_TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|>=|<=|&&|\|\||[<>!().,=])
                    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*))""", re.VERBOSE)
DATE_FIELDS = {"Date", "DueDate", "FullyPaidOnDate", "ExpectedPaymentDate", "PlannedPaymentDate"}
Predicate = Callable[[dict], bool]


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

    def parse(self) -> Predicate:
        pred = self.or_expr()
        if self.peek() is not None:
            raise _bad(self.text)
        return pred

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while (tok := self.peek()) and tok[1].upper() in {"||", "OR"}:
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda o: any(p(o) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while (tok := self.peek()) and tok[1].upper() in {"&&", "AND"}:
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda o: all(p(o) for p in parts))

    def unary(self) -> Predicate:
        tok = self.peek()
        if tok and tok[1] in {"!"} or (tok and tok[1].upper() == "NOT"):
            self.take()
            inner = self.unary()
            return lambda o: not inner(o)
        if tok and tok[1] == "(":
            self.take("(")
            inner = self.or_expr()
            self.take(")")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        left = self.operand()
        tok = self.peek()
        if tok and tok[1] in {"==", "!=", ">=", "<=", ">", "<", "="}:
            op = self.take()[1]
            right = self.operand()
            return lambda o: _compare(op, left(o), right(o))
        return lambda o: bool(left(o))

    def operand(self) -> Callable[[dict], Any]:
        kind, value = self.take()
        if kind == "str":
            text = bytes(value[1:-1], "utf-8").decode("unicode_escape")
            return lambda o: text
        if kind == "num":
            number = float(value)
            return lambda o: number
        if kind != "ident":
            raise _bad(self.text)
        upper = value.upper()
        if upper in {"TRUE", "FALSE"}:
            return lambda o: upper == "TRUE"
        if upper == "NULL":
            return lambda o: None
        calls = self.peek() is not None and self.peek()[1] == "("
        if upper == "GUID" and calls:
            self.take("(")
            guid = self.take()[1].strip('"')
            self.take(")")
            return lambda o: guid
        if upper in {"DATETIME", "DATE"} and calls:
            self.take("(")
            parts = [int(self.take()[1])]
            while self.peek() and self.peek()[1] == ",":
                self.take(",")
                parts.append(int(self.take()[1]))
            self.take(")")
            moment = datetime(*parts, tzinfo=UTC) if len(parts) > 3 else date(*parts)
            return lambda o: moment
        path = [value]
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
        return _accessor(path, method)


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


def compile_where(where: str) -> Predicate:
    return _Parser(where).parse()
