"""The $filter subset Graph supports on users: a tokenizer, a recursive-descent parser and an evaluator.

String literals follow OData: single-quoted, a quote inside is doubled (''). A literal can therefore never
end early, so no input can widen a filter; anything outside the supported grammar is a 400 as in Graph.

Grammar (case-insensitive keywords):
    expr       := and_expr ('or' and_expr)*
    and_expr   := unary ('and' unary)*
    unary      := 'not' unary | primary
    primary    := '(' expr ')' | function | lambda | comparison | in_expr
    function   := ('startsWith' | 'endsWith') '(' property ',' literal ')'
    lambda     := property '/' 'any' '(' var ':' var ('/' name)? op literal ')'
    comparison := property op literal
    in_expr    := property 'in' '(' literal (',' literal)* ')'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tenantsim.errors import GraphError, unsupported_query

COMPARISON_OPS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[()/,:])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    value: Any = None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise _syntax(f"Syntax error at position {pos} in '{text}'.")
        pos = match.end()
        kind = match.lastgroup or ""
        raw = match.group()
        if kind == "ws":
            continue
        if kind == "string":
            tokens.append(Token("literal", raw, raw[1:-1].replace("''", "'")))
        elif kind == "datetime":
            tokens.append(Token("literal", raw, _parse_datetime(raw)))
        elif kind == "guid":
            tokens.append(Token("literal", raw, raw))
        elif kind == "number":
            tokens.append(Token("literal", raw, float(raw) if "." in raw else int(raw)))
        elif kind == "name" and raw.lower() in {"true", "false"}:
            tokens.append(Token("literal", raw, raw.lower() == "true"))
        elif kind == "name" and raw.lower() == "null":
            tokens.append(Token("literal", raw, None))
        else:
            tokens.append(Token(kind, raw))
    return tokens


# --- AST -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    prop: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class InList:
    prop: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Function:
    name: str  # startswith | endswith
    prop: str
    value: str


@dataclass(frozen=True, slots=True)
class AnyLambda:
    collection: str
    member: str | None  # x/issuer -> "issuer"; plain x -> None
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # and | or
    operands: tuple[Node, ...]


Node = Comparison | InList | Function | AnyLambda | Not | BoolOp


@dataclass(slots=True)
class FilterInfo:
    """What the parsed filter uses, for Graph's advanced-query rules and for picking an index."""

    properties: set[str] = field(default_factory=set)
    needs_advanced: bool = False


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.info = FilterInfo()

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def at(self, text: str) -> bool:
        """The next token is ``text`` (a separator), without consuming it."""
        token = self.peek()
        return token is not None and token.text == text

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            raise _syntax("Unexpected end of the filter expression.")
        self.pos += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "name" and token.text.lower() == word:
            self.pos += 1
            return True
        return False

    def expect_punct(self, char: str) -> None:
        token = self.next()
        if token.kind != "punct" or token.text != char:
            raise _syntax(f"Expected '{char}' but found '{token.text}'.")

    def expect_literal(self) -> Any:
        token = self.next()
        if token.kind != "literal":
            raise _syntax(f"Expected a literal but found '{token.text}'.")
        return token.value

    def expect_name(self) -> str:
        token = self.next()
        if token.kind != "name":
            raise _syntax(f"Expected a property name but found '{token.text}'.")
        return token.text

    def parse(self) -> Node:
        node = self.or_expr()
        if (extra := self.peek()) is not None:
            raise _syntax(f"Unexpected '{extra.text}' after the end of the expression.")
        return node

    def or_expr(self) -> Node:
        operands = [self.and_expr()]
        while self.keyword("or"):
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def and_expr(self) -> Node:
        operands = [self.unary()]
        while self.keyword("and"):
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def unary(self) -> Node:
        if self.keyword("not"):
            self.info.needs_advanced = True
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        token = self.peek()
        if token is not None and token.kind == "punct" and token.text == "(":
            self.pos += 1
            node = self.or_expr()
            self.expect_punct(")")
            return node
        name = self.expect_name()
        lowered = name.lower()
        after = self.peek()
        if lowered in {"startswith", "endswith"} and after is not None and after.text == "(":
            return self.function(lowered)
        if after is not None and after.kind == "punct" and after.text == "/":
            return self.path_or_lambda(name)
        return self.comparison_or_in(name)

    def function(self, name: str) -> Node:
        self.expect_punct("(")
        prop = self.expect_name()
        self.expect_punct(",")
        value = self.expect_literal()
        self.expect_punct(")")
        if not isinstance(value, str):
            raise _syntax(f"{name} expects a string literal.")
        if name == "endswith":
            self.info.needs_advanced = True
        self.info.properties.add(prop)
        return Function(name, prop, value)

    def path_or_lambda(self, head: str) -> Node:
        self.expect_punct("/")
        segment = self.expect_name()
        if segment.lower() != "any":
            return self.comparison_or_in(f"{head}/{segment}")
        self.expect_punct("(")
        var = self.expect_name()
        self.expect_punct(":")
        ref = self.expect_name()
        if ref != var:
            raise _syntax(f"Unknown range variable '{ref}'.")
        member: str | None = None
        if self.at("/"):
            self.pos += 1
            member = self.expect_name()
        op = self.expect_name().lower()
        if op not in COMPARISON_OPS:
            raise _syntax(f"Unsupported operator '{op}' in a lambda.")
        if op == "ne":
            self.info.needs_advanced = True
        value = self.expect_literal()
        self.expect_punct(")")
        self.info.properties.add(head)
        return AnyLambda(head, member, op, value)

    def comparison_or_in(self, prop: str) -> Node:
        op_token = self.next()
        op = op_token.text.lower()
        self.info.properties.add(prop)
        if op_token.kind == "name" and op == "in":
            self.expect_punct("(")
            values = [self.expect_literal()]
            while self.at(","):
                self.pos += 1
                values.append(self.expect_literal())
            self.expect_punct(")")
            return InList(prop, tuple(values))
        if op_token.kind != "name" or op not in COMPARISON_OPS:
            raise _syntax(f"Unsupported operator '{op_token.text}'.")
        if op == "ne":
            self.info.needs_advanced = True
        return Comparison(prop, op, self.expect_literal())


def parse_filter(text: str) -> tuple[Node, FilterInfo]:
    parser = _Parser(tokenize(text))
    node = parser.parse()
    return node, parser.info


# --- evaluation ------------------------------------------------------------------------------------

Predicate = Callable[[dict[str, Any]], bool]


def compile_filter(node: Node, filterable: dict[str, str]) -> Predicate:
    """Turn the AST into a predicate over a user's Graph JSON; `filterable` maps property -> kind."""
    if isinstance(node, BoolOp):
        parts = [compile_filter(operand, filterable) for operand in node.operands]
        if node.op == "and":
            return lambda user: all(part(user) for part in parts)
        return lambda user: any(part(user) for part in parts)
    if isinstance(node, Not):
        inner = compile_filter(node.operand, filterable)
        return lambda user: not inner(user)
    if isinstance(node, Comparison):
        prop, kind = _kind_of(node.prop, filterable)
        if kind == "collection":
            raise unsupported_query(f"Unsupported query on collection property '{node.prop}'; use any().")
        getter = _getter(prop)
        expected = _coerce(node.value, kind, node.prop)
        op = node.op
        return lambda user: _compare(_normalise(getter(user), kind), op, expected)
    if isinstance(node, InList):
        prop, kind = _kind_of(node.prop, filterable)
        getter = _getter(prop)
        wanted = {_coerce(value, kind, node.prop) for value in node.values}
        return lambda user: _normalise(getter(user), kind) in wanted
    if isinstance(node, Function):
        prop, kind = _kind_of(node.prop, filterable)
        if kind != "string":
            raise unsupported_query(f"{node.name} is not supported on property '{node.prop}'.")
        getter = _getter(prop)
        needle = node.value.casefold()
        if node.name == "startswith":
            return lambda user: (getter(user) or "").casefold().startswith(needle)
        return lambda user: (getter(user) or "").casefold().endswith(needle)
    if isinstance(node, AnyLambda):
        collection, kind = _kind_of(node.collection, filterable)
        if kind != "collection":
            raise unsupported_query(f"any() is not supported on property '{node.collection}'.")
        expected = _coerce(node.value, "string", node.collection)
        member, op = node.member, node.op

        def matches(user: dict[str, Any]) -> bool:
            for item in user.get(collection) or ():
                value = item.get(member) if member and isinstance(item, dict) else item
                if _compare(_normalise(value, "string"), op, expected):
                    return True
            return False

        return matches
    raise TypeError(f"unknown filter node {node!r}")  # pragma: no cover - the parser builds only the above


def _kind_of(prop: str, filterable: dict[str, str]) -> tuple[str, str]:
    """(canonical property name, kind); property names match case-insensitively as in Graph."""
    for name, kind in filterable.items():
        if name.lower() == prop.lower():
            return name, kind
    raise unsupported_query(
        f"Unsupported or invalid query filter clause specified for property '{prop}' of resource 'User'."
    )


def _getter(prop: str) -> Callable[[dict[str, Any]], Any]:
    parts = prop.split("/")

    def get(user: dict[str, Any]) -> Any:
        value: Any = user
        for part in parts:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return get


def _coerce(value: Any, kind: str, prop: str) -> Any:
    if value is None:
        return None
    if kind in {"string", "collection"}:
        if not isinstance(value, str):
            raise _incompatible(prop)
        return value.casefold()
    if kind == "bool":
        if not isinstance(value, bool):
            raise _incompatible(prop)
        return value
    if kind == "datetime":
        if isinstance(value, datetime):
            return value
        raise _incompatible(prop)
    return value


def _normalise(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind in {"string", "collection"} and isinstance(value, str):
        return value.casefold()
    if kind == "datetime" and isinstance(value, str):
        return _parse_datetime(value)
    return value


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if actual is None or expected is None:
        return False
    if op == "gt":
        return actual > expected
    if op == "ge":
        return actual >= expected
    if op == "lt":
        return actual < expected
    return actual <= expected


def _parse_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _syntax(message: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Invalid filter clause: {message}")


def _incompatible(prop: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Invalid filter clause: incompatible literal for property '{prop}'.")
