"""The subset of Xero's `where` filter language a client of contacts and invoices needs.

Clauses are `Path==value`, `Path!=value` or `Path.Contains("x")` (also
StartsWith, EndsWith) joined by AND / OR (AND binds
tighter, as in C#, whose syntax Xero's filter borrows). Values: "string",
Guid("..."), true/false, null, numbers. Paths are dotted (Contact.ContactID)
and may end in .ToLower() or .ToUpper(). String comparison ignores case, like
Xero's database collation, so those two change nothing.

A string literal runs to the next double quote: like real Xero, the parser has
no escape for a quote inside a value (README.md, "Refusals"). `\"` is a
"Syntax error"; a bare quote ends the value early and what follows is read as a
property name ("No property or field 'X' exists in type 'Contact'")."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<lparen>\() | (?P<rparen>\)) |
      (?P<and>AND\b|&&) | (?P<or>OR\b|\|\|) |
      (?P<mpath>[A-Za-z_][A-Za-z0-9_.]*?)(?:\.To(?:Lower|Upper)\(\))?\.(?P<method>Contains|StartsWith|EndsWith)
        \(\s*(?P<mvalue>"[^"]*")\s*\) |
      (?P<path>[A-Za-z_][A-Za-z0-9_.]*?)(?:\.To(?:Lower|Upper)\(\))?\s*(?P<op>==|!=|=(?!=))\s*
      (?P<value>"[^"]*"|[Gg]uid\(\s*"?[0-9A-Fa-f-]+"?\s*\)|true|false|null|-?\d+(?:\.\d+)?)
    )""", re.VERBOSE)


class QueryError(ValueError):
    pass


def _literal(text: str):
    if text.startswith('"'):
        return text[1:-1]  # no escapes: a backslash is an ordinary character
    if text.lower().startswith("guid("):
        return text[5:-1].strip().strip('"')
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise QueryError(f"Cannot parse value {text}") from exc


def _resolve(doc, path: str):
    value = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _equal(actual, expected) -> bool:
    if isinstance(expected, bool) or expected is None:
        return actual == expected
    if isinstance(expected, Decimal):
        try:
            return actual is not None and Decimal(str(actual)) == expected
        except InvalidOperation:
            return False
    return isinstance(actual, str) and actual.casefold() == expected.casefold()


_WORD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")
_KEYWORDS = {"AND", "OR", "true", "false", "null", "Guid", "guid"}


def _unparsable(text: str, pos: int, record_type: str) -> QueryError:
    # What Xero says when a quote inside a value ended it early (xeroizer issue 160): the
    # rest of the value reads as a property name. Anything else is Xero's "Syntax error".
    word = _WORD.match(text, pos)
    if pos and text[pos - 1] == '"' and word and word.group(1) not in _KEYWORDS:
        return QueryError(f"No property or field '{word.group(1)}' exists in type '{record_type}'")
    return QueryError("Syntax error")


def parse(where: str, record_type: str = "Contact"):
    """A predicate over a rendered record, or QueryError carrying Xero's message."""
    tokens, pos = [], 0
    text = where.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise _unparsable(text, pos, record_type)
        if (match.group("value") or match.group("mvalue") or "").endswith('\\"'):
            raise QueryError("Syntax error")  # \" inside a value: no escape exists (Xero-Java issue 347)
        pos = match.end()
        kind = match.lastgroup if match.lastgroup != "value" else "clause"
        if match.group("path") or match.group("mpath"):
            kind = "clause"
        tokens.append((kind, match))
    tokens.reverse()
    predicate = _parse_or(tokens)
    if tokens:
        raise QueryError("Syntax error")
    return predicate


def _parse_or(tokens):
    left = _parse_and(tokens)
    while tokens and tokens[-1][0] == "or":
        tokens.pop()
        right = _parse_and(tokens)
        left = (lambda a, b: lambda doc: a(doc) or b(doc))(left, right)
    return left


def _parse_and(tokens):
    left = _parse_atom(tokens)
    while tokens and tokens[-1][0] == "and":
        tokens.pop()
        right = _parse_atom(tokens)
        left = (lambda a, b: lambda doc: a(doc) and b(doc))(left, right)
    return left


def _parse_atom(tokens):
    if not tokens:
        raise QueryError("Syntax error")
    kind, match = tokens.pop()
    if kind == "lparen":
        inner = _parse_or(tokens)
        if not tokens or tokens.pop()[0] != "rparen":
            raise QueryError("Syntax error")
        return inner
    if kind != "clause":
        raise QueryError("Syntax error")
    if match.group("mpath"):
        return _method_clause(match.group("mpath"), match.group("method"), _literal(match.group("mvalue")))
    path, op, expected = match.group("path"), match.group("op"), _literal(match.group("value"))
    if op == "!=":
        return lambda doc: not _equal(_resolve(doc, path), expected)
    return lambda doc: _equal(_resolve(doc, path), expected)


def _method_clause(path: str, method: str, text: str):
    test = {"Contains": str.__contains__, "StartsWith": str.startswith, "EndsWith": str.endswith}[method]
    needle = text.casefold()

    def predicate(doc):
        value = _resolve(doc, path)
        return isinstance(value, str) and test(value.casefold(), needle)
    return predicate
