"""Sequence-flow conditions written in Camunda Modeler's syntax, translated for the sandbox.

Models drawn in Camunda Modeler carry conditions in the modeler's own expression language,
which SpiffWorkflow cannot evaluate: Camunda 7 writes JUEL (``${outcome == 'accept'}``,
``#{a && !b}``), Camunda 8 writes FEEL introduced by ``=`` (``=outcome = "accept"``).
The engine evaluates conditions as a restricted subset of Python
(:mod:`onestop.bpmn.sandbox`), so :func:`translate` rewrites the small part of JUEL and
FEEL that conditions of one-stop models need into an equivalent Python expression, and
refuses everything else with a :class:`ConditionSyntaxError` that names the construct.
Refusing is deliberate: a condition that silently means something else than the designer
drew routes dossiers the wrong way, which is worse than a model that does not load.

Text that starts with neither ``${``, ``#{`` nor ``=`` is taken to be Python already and is
returned unchanged (stripped).

Supported in JUEL (the whole condition is one ``${...}`` or ``#{...}``):

* values: ``true``, ``false``, ``null``, integer and decimal numbers (``1``, ``2.5``,
  ``1e3``), strings in single or double quotes with the escapes ``\\'``, ``\\"`` and
  ``\\\\``, variable names, parentheses;
* ``execution.getVariable('name')``, read as the variable ``name``;
* ``==``/``eq``, ``!=``/``ne``, ``<``/``lt``, ``<=``/``le``, ``>``/``gt``, ``>=``/``ge``;
* ``&&``/``and``, ``||``/``or``, ``!``/``not``, ``empty x``;
* ``+``, ``-`` (binary and unary), ``*``, ``/``/``div``, ``%``/``mod``;
* the conditional ``a ? b : c``.

Supported in FEEL (the text after ``=``):

* values: ``true``, ``false``, ``null``, numbers (``1``, ``2.5``), strings in double quotes
  (escapes ``\\"``, ``\\\\``, ``\\'``, ``\\n``, ``\\r``, ``\\t``, ``\\uXXXX``), variable names,
  parentheses;
* ``=`` (equality), ``!=``, ``<``, ``<=``, ``>``, ``>=``;
* ``and``, ``or``, ``not(x)``;
* ``+``, ``-`` (binary and unary), ``*``, ``/``.

Refused, with a message naming the construct: property access and method or function
calls (``x.size()``, ``a.b``, ``fn:contains(...)``, ``date("...")``), index access and
filters (``a[0]``), list, set, map and context literals, ranges and ``in``, ``between``,
``instance of``/``instanceof``, ``if``/``for``/``some``/``every``, temporal literals
(``@"..."``), lambdas, assignment, ``**``, FEEL names containing spaces (two names in a
row), single-quoted FEEL strings, text around a ``${...}`` expression, and chained
comparisons such as ``a < b < c`` (JUEL reads it as ``(a < b) < c``, Python as
``a < b and b < c``: write the parentheses or the ``and`` you mean). Variable names must
be plain ASCII (``[A-Za-z_][A-Za-z0-9_]*``), must not start with ``_`` (the sandbox
reserves those) and must not be Python keywords (``class``, ``from``, ``lambda``, ...).

Translation is done by a tokenizer (string literals are decoded and re-encoded, never
rewritten) and a recursive-descent parser following each language's operator precedence;
the output carries exactly the parentheses Python needs to keep that structure. For
example JUEL's ``!a == b`` means ``(!a) == b`` and becomes ``(not a) == b``, whereas a
word-by-word ``not a == b`` would mean ``not (a == b)`` in Python.

What is translated is the syntax. Values then behave as Python values: JUEL's type
coercions do not happen (``'1' == 1`` is false, ``+`` on strings concatenates instead of
adding numbers, comparing ``null`` with a number is an error), FEEL's three-valued logic
does not apply (``not(null)`` is true, not null), FEEL decimals are binary floats, and
``%`` follows Python's sign rule for negative operands. ``empty x`` is true exactly for
``null``, ``""``, an empty list and an empty map, as in JUEL (``empty 0`` is false).
"""

from __future__ import annotations

import ast
import keyword
import math
from dataclasses import dataclass
from typing import Callable, NoReturn

from ..errors import ModelError

__all__ = ["ConditionSyntaxError", "dialect", "translate"]

_LANGUAGE_NAMES = {"juel": "JUEL", "feel": "FEEL", "python": "Python"}


class ConditionSyntaxError(ModelError, ValueError):
    """A JUEL or FEEL condition that cannot be translated unambiguously.

    The message names the dialect, the whole condition, what is wrong and where, e.g.
    ``JUEL condition "${x.size() > 0}": method calls are not supported (at "size")``.
    ``dialect``, ``expression``, ``reason``, ``position`` (offset in the stripped
    condition) and ``token`` (the text found there, ``None`` at the end) hold the parts.
    """

    def __init__(self, reason: str, *, dialect: str, expression: str, position: int,
                 token: str | None) -> None:
        where = f'(at "{token}")' if token is not None else "(at the end)"
        super().__init__(f'{_LANGUAGE_NAMES.get(dialect, dialect)} condition "{expression}": '
                         f"{reason} {where}")
        self.reason = reason
        self.dialect = dialect
        self.expression = expression
        self.position = position
        self.token = token


def dialect(text: str) -> str:
    """Return the language of a condition: ``"juel"``, ``"feel"`` or ``"python"``.

    ``${...}`` and ``#{...}`` are JUEL, text starting with ``=`` is FEEL, anything else is
    Python, except text that is not Python but contains ``${`` or ``#{`` (such as
    ``x ${a}``): that is JUEL with text around it, which :func:`translate` refuses.
    """
    source = text.strip()
    if source.startswith(("${", "#{")):
        return "juel"
    if source.startswith("="):
        return "feel"
    if ("${" in source or "#{" in source) and not _parses_as_python(source):
        return "juel"
    return "python"


def translate(text: str) -> str:
    """Return a Python expression for the sandbox equivalent to ``text``.

    Plain Python expressions (anything not starting with ``${``, ``#{`` or ``=``) are
    returned unchanged (stripped). Raise :class:`ConditionSyntaxError` (a ``ValueError``
    and a :class:`~onestop.errors.ModelError`) with a message a process designer
    understands when the expression is in JUEL or FEEL but cannot be translated
    unambiguously.
    """
    source = text.strip()
    language = dialect(source)
    if language == "python":
        return source
    if language == "juel" and not source.startswith(("${", "#{")):
        starts = [at for at in (source.find("${"), source.find("#{")) if at >= 0]
        raise ConditionSyntaxError(
            "the condition must be a single ${...} expression with nothing before it",
            dialect="juel", expression=source, position=0,
            token=source[:min(starts)].strip())
    return _Parser(language, source, _tokenize(language, source)).parse()


def _parses_as_python(source: str) -> bool:
    try:
        ast.parse(source, mode="eval")
    except (SyntaxError, ValueError):
        return False
    return True


# --------------------------------------------------------------------------- tokens

@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "str", "name", "op" or "end"
    text: str  # as written in the condition
    value: str  # numbers: the Python literal; strings: the decoded text
    pos: int  # offset in the stripped condition


_OPERATORS = {
    "juel": ("==", "!=", "<=", ">=", "&&", "||", "+=", "->",
             "<", ">", "!", "+", "-", "*", "/", "%", "(", ")", "?", ":", ".", "[", "]",
             ",", ";", "="),
    "feel": ("!=", "<=", ">=", "**", "..", "==", "&&", "||",
             "=", "<", ">", "!", "+", "-", "*", "/", "%", "(", ")", "[", "]", "{", "}",
             ",", ".", ":", "@", "?"),
}
_DIGITS = "0123456789"
_FEEL_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def _error(language: str, source: str, reason: str, position: int,
           token: str | None) -> ConditionSyntaxError:
    return ConditionSyntaxError(reason, dialect=language, expression=source,
                                position=position, token=token)


def _tokenize(language: str, source: str) -> list[_Token]:
    """Split the body of a JUEL (after ``${``) or FEEL (after ``=``) condition."""
    tokens: list[_Token] = []
    i = 2 if language == "juel" else 1
    n = len(source)
    while True:
        while i < n and source[i].isspace():
            i += 1
        if i >= n:
            if language == "juel":
                raise _error(language, source, "the closing '}' is missing", n, None)
            tokens.append(_Token("end", "", "", n))
            return tokens
        c = source[i]
        if language == "juel" and c == "}":
            rest = source[i + 1:]
            if rest.strip():
                at = i + 1 + len(rest) - len(rest.lstrip())
                raise _error(language, source, "the condition must be a single ${...} "
                             "expression with nothing after it", at, rest.strip())
            tokens.append(_Token("end", "}", "", i))
            return tokens
        if c in "'\"":
            token = _string(language, source, i)
        elif c in _DIGITS or (c == "." and source[i + 1:i + 2] in tuple(_DIGITS)):
            token = _number(language, source, i)
        elif c.isalpha() or c == "_":
            j = i + 1
            while j < n and (source[j].isalnum() or source[j] == "_"):
                j += 1
            word = source[i:j]
            if not word.isascii():
                raise _error(language, source, "variable names may only use ASCII letters, "
                             "digits and '_' (for example ket_qua)", i, word)
            token = _Token("name", word, word, i)
        else:
            token = _operator(language, source, i)
        tokens.append(token)
        i = token.pos + len(token.text)


def _operator(language: str, source: str, i: int) -> _Token:
    for op in _OPERATORS[language]:
        if source.startswith(op, i):
            return _Token("op", op, op, i)
    c = source[i]
    if language == "juel":
        if source.startswith(("${", "#{"), i):
            reason = "nested ${...} expressions are not supported"
            return _fail_char(language, source, reason, i, source[i:i + 2])
        if c in "&|":
            reason = f"use '{c}{c}' ('{'and' if c == '&' else 'or'}'); a single '{c}' is not JUEL"
            return _fail_char(language, source, reason, i, c)
        if c == "{":
            return _fail_char(language, source,
                              "set and map literals ({...}) are not supported", i, c)
    if language == "feel":
        if c == "`":
            return _fail_char(language, source, "names in backquotes are not supported", i, c)
    return _fail_char(language, source, "unexpected character", i, c)


def _fail_char(language: str, source: str, reason: str, i: int, text: str) -> NoReturn:
    raise _error(language, source, reason, i, text)


def _string(language: str, source: str, i: int) -> _Token:
    quote = source[i]
    if language == "feel" and quote == "'":
        raise _error(language, source, "FEEL strings are written in double quotes; single "
                     "quotes are not FEEL", i, "'")
    n = len(source)
    j = i + 1
    chars: list[str] = []
    while True:
        if j >= n:
            raise _error(language, source, "the string is not closed", i, source[i:j])
        ch = source[j]
        if ch == quote:
            break
        if ch != "\\":
            chars.append(ch)
            j += 1
            continue
        escape = source[j + 1:j + 2]
        if language == "juel":
            if escape not in ("'", '"', "\\"):
                raise _error(language, source, "unknown escape in a string (JUEL strings "
                             "allow only \\', \\\" and \\\\)", j, source[j:j + 2])
            chars.append(escape)
            j += 2
        elif escape in _FEEL_ESCAPES:
            chars.append(_FEEL_ESCAPES[escape])
            j += 2
        elif escape in ("u", "U"):
            width = 4 if escape == "u" else 6
            digits = source[j + 2:j + 2 + width]
            if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits) \
                    or int(digits, 16) > 0x10FFFF:
                raise _error(language, source, f"\\{escape} must be followed by {width} "
                             "hexadecimal digits", j, source[j:j + 2 + width])
            chars.append(chr(int(digits, 16)))
            j += 2 + width
        else:
            raise _error(language, source, "unknown escape in a string", j, source[j:j + 2])
    return _Token("str", source[i:j + 1], "".join(chars), i)


def _number(language: str, source: str, i: int) -> _Token:
    n = len(source)

    def digits_from(k: int) -> int:
        while k < n and source[k] in _DIGITS:
            k += 1
        return k

    j = digits_from(i)
    decimal = False
    if j < n and source[j] == ".":
        after = source[j + 1:j + 2]
        if after and after in _DIGITS:
            decimal = True
            j = digits_from(j + 1)
        elif language == "juel" and j > i and not (after.isalpha() or after in ("_", ".")):
            decimal = True  # JUEL allows "1." for 1.0
            j += 1
    if language == "juel" and source[j:j + 1] in ("e", "E"):
        sign = 1 if source[j + 1:j + 2] in ("+", "-") else 0
        if source[j + 1 + sign:j + 2 + sign] in tuple(_DIGITS):
            decimal = True
            j = digits_from(j + 1 + sign)
    text = source[i:j]
    if not decimal:
        return _Token("num", text, str(int(text)), i)
    number = float(text)
    if not math.isfinite(number):
        raise _error(language, source, "the number is too large", i, text)
    return _Token("num", text, repr(number), i)


# --------------------------------------------------------------------------- parser

# Python's precedence levels of what the translation emits (higher binds tighter).
_TERNARY, _OR, _AND, _NOT, _COMPARE, _ADD, _MUL, _UNARY, _ATOM = 1, 2, 3, 4, 5, 10, 11, 12, 14


@dataclass(frozen=True)
class _Py:
    """A translated sub-expression: its Python text and the precedence of its top operator.
    ``comparison`` is the operator token when it is a comparison that was not written in
    parentheses (to detect chained comparisons)."""

    text: str
    prec: int
    comparison: _Token | None = None


_Level = Callable[[], _Py]


def _wrap(expr: _Py, minimum: int) -> str:
    """The text of ``expr``, parenthesized if it binds less tightly than ``minimum``."""
    return expr.text if expr.prec >= minimum else f"({expr.text})"


_JUEL_EQUALITY = {"==": "==", "eq": "==", "!=": "!=", "ne": "!="}
_JUEL_RELATIONAL = {"<": "<", "lt": "<", ">": ">", "gt": ">", "<=": "<=", "le": "<=",
                    ">=": ">=", "ge": ">="}
_FEEL_COMPARISON = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_JUEL_MULTIPLICATIVE = {"*": "*", "/": "/", "div": "/", "%": "%", "mod": "%"}
_FEEL_MULTIPLICATIVE = {"*": "*", "/": "/"}
_JUEL_KEYWORDS = frozenset({"and", "or", "not", "eq", "ne", "lt", "gt", "le", "ge", "empty",
                            "div", "mod", "true", "false", "null", "instanceof"})
_FEEL_KEYWORDS = frozenset({"and", "or", "not", "true", "false", "null", "if", "then", "else",
                            "for", "in", "return", "some", "every", "satisfies", "between",
                            "instance", "of", "function"})
_FEEL_CONSTRUCTS = {
    "if": "if-then-else expressions are not supported",
    "for": "for loops (for ... in ... return) are not supported",
    "some": "quantified expressions (some ... satisfies) are not supported",
    "every": "quantified expressions (every ... satisfies) are not supported",
    "function": "function definitions are not supported",
    "in": "'in' tests (lists and ranges) are not supported",
    "between": "'between' is not supported; write x >= a and x <= b",
    "instance": "'instance of' is not supported",
}
_LITERALS = {"true": "True", "false": "False", "null": "None"}
_CHAIN = "chained comparison is ambiguous; add parentheses or join the comparisons with 'and'"


class _Parser:
    """Recursive descent over the tokens, one method per precedence level (loosest first):
    conditional (JUEL) < or < and < equality < relational < additive < multiplicative <
    unary < primary. FEEL has a single comparison level and no conditional."""

    def __init__(self, language: str, source: str, tokens: list[_Token]) -> None:
        self.language = language
        self.source = source
        self.tokens = tokens
        self.index = 0

    # helpers

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.peek()
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def fail(self, reason: str, token: _Token) -> NoReturn:
        raise _error(self.language, self.source, reason, token.pos,
                     None if token.kind == "end" else token.text)

    def operator(self, table: dict[str, str]) -> str | None:
        """The Python operator for the next token if it is one of ``table``'s."""
        token = self.peek()
        if token.kind in ("op", "name") and token.text in table:
            return table[token.text]
        return None

    def expect(self, op: str, what: str) -> None:
        token = self.peek()
        if token.kind == "op" and token.text == op:
            self.advance()
            return
        self.unexpected(token, what)

    # levels

    def parse(self) -> str:
        if self.peek().kind == "end":
            self.fail("the expression is empty", self.peek())
        result = self.conditional()
        if self.peek().kind != "end":
            self.unexpected(self.peek(), None)
        return result.text

    def conditional(self) -> _Py:
        condition = self.disjunction()
        if self.language != "juel" or not (self.peek().kind == "op"
                                           and self.peek().text == "?"):
            return condition
        self.advance()
        if_true = self.conditional()
        self.expect(":", "the ':' of 'condition ? value : other value'")
        if_false = self.conditional()
        return _Py(f"{_wrap(if_true, _OR)} if {_wrap(condition, _OR)} "
                   f"else {_wrap(if_false, _TERNARY)}", _TERNARY)

    def disjunction(self) -> _Py:
        table = {"||": "or", "or": "or"} if self.language == "juel" else {"or": "or"}
        left = self.conjunction()
        while self.operator(table):
            self.advance()
            right = self.conjunction()
            left = _Py(f"{_wrap(left, _OR)} or {_wrap(right, _AND)}", _OR)
        return left

    def conjunction(self) -> _Py:
        table = {"&&": "and", "and": "and"} if self.language == "juel" else {"and": "and"}
        left = self.equality()
        while self.operator(table):
            self.advance()
            right = self.equality()
            left = _Py(f"{_wrap(left, _AND)} and {_wrap(right, _NOT)}", _AND)
        return left

    def equality(self) -> _Py:
        if self.language == "feel":
            return self.comparisons(_FEEL_COMPARISON, self.additive)
        return self.comparisons(_JUEL_EQUALITY, self.relational)

    def relational(self) -> _Py:
        return self.comparisons(_JUEL_RELATIONAL, self.additive)

    def comparisons(self, table: dict[str, str], operand: _Level) -> _Py:
        left = operand()
        while (op := self.operator(table)) is not None:
            token = self.advance()
            if left.comparison is not None:
                self.fail(_CHAIN, token)
            right = operand()
            if right.comparison is not None:
                self.fail(_CHAIN, right.comparison)
            left = _Py(f"{_wrap(left, _COMPARE + 1)} {op} {_wrap(right, _COMPARE + 1)}",
                       _COMPARE, comparison=token)
        return left

    def additive(self) -> _Py:
        return self.arithmetic({"+": "+", "-": "-"}, _ADD, self.multiplicative)

    def multiplicative(self) -> _Py:
        table = _JUEL_MULTIPLICATIVE if self.language == "juel" else _FEEL_MULTIPLICATIVE
        return self.arithmetic(table, _MUL, self.unary)

    def arithmetic(self, table: dict[str, str], prec: int, operand: _Level) -> _Py:
        left = operand()
        while (op := self.operator(table)) is not None:
            self.advance()
            right = operand()
            left = _Py(f"{_wrap(left, prec)} {op} {_wrap(right, prec + 1)}", prec)
        return left

    def unary(self) -> _Py:
        token = self.peek()
        if token.kind == "op" and token.text == "-":
            self.advance()
            operand = _wrap(self.unary(), _UNARY)
            if operand.startswith("-"):  # "- -a": write -(-a), not --a
                operand = f"({operand})"
            return _Py(f"-{operand}", _UNARY)
        if self.language == "juel":
            if (token.kind == "op" and token.text == "!") or \
                    (token.kind == "name" and token.text == "not"):
                self.advance()
                return _Py(f"not {_wrap(self.unary(), _NOT)}", _NOT)
            if token.kind == "name" and token.text == "empty":
                self.advance()
                operand = _wrap(self.unary(), _COMPARE + 1)
                return _Py(f"{operand} in (None, '', [], {{}})", _COMPARE)
        return self.postfix(self.primary())

    def postfix(self, value: _Py) -> _Py:
        token = self.peek()
        if token.kind == "op" and token.text == ".":
            member = self.peek(1)
            if member.kind != "name":
                self.unexpected(member, "a name after '.'")
            if self.language == "feel":
                self.fail("paths (a.b) are not supported", member)
            called = self.peek(2).kind == "op" and self.peek(2).text == "("
            self.fail("method calls are not supported" if called
                      else "property access (a.b) is not supported", member)
        if token.kind == "op" and token.text == "[":
            self.fail("index access (a[...]) is not supported" if self.language == "juel"
                      else "filters (a[...]) are not supported", token)
        return value

    def primary(self) -> _Py:
        token = self.peek()
        if token.kind == "num":
            self.advance()
            return _Py(token.value, _ATOM)
        if token.kind == "str":
            self.advance()
            return _Py(repr(token.value), _ATOM)
        if token.kind == "op" and token.text == "(":
            self.advance()
            inner = self.conditional()
            self.expect(")", "')'")
            return _Py(inner.text, inner.prec)  # written in parentheses: not a chain
        if token.kind == "name":
            return self.name()
        self.value_expected(token)

    def name(self) -> _Py:
        token = self.peek()
        word = token.text
        if word in _LITERALS:
            self.advance()
            return _Py(_LITERALS[word], _ATOM)
        following = self.peek(1)
        opens = following.kind == "op" and following.text == "("
        if self.language == "juel":
            if word == "instanceof":
                self.fail("'instanceof' is not supported", token)
            if word in _JUEL_KEYWORDS:
                self.value_expected(token)
            if word == "execution" and self.is_get_variable():
                return self.get_variable()
            if self.is_prefixed_function():
                self.fail("function calls are not supported",
                          _Token("name", self.source[token.pos:self.peek(2).pos
                                                     + len(self.peek(2).text)], "", token.pos))
        else:
            if word == "not":
                return self.feel_not()
            if word in _FEEL_CONSTRUCTS and word not in ("in", "between", "instance"):
                self.fail(_FEEL_CONSTRUCTS[word], token)
            if word in _FEEL_KEYWORDS:
                self.value_expected(token)
        if opens:
            self.fail("function calls are not supported", token)
        self.advance()
        return _Py(self.variable(token, word), _ATOM)

    def variable(self, token: _Token, name: str) -> str:
        if name.startswith("_"):
            self.fail("names starting with '_' are reserved", token)
        if keyword.iskeyword(name):
            literal = {"True": "true", "False": "false", "None": "null"}.get(name)
            hint = f"; for the value, write {literal}" if literal else ""
            self.fail(f"the variable name '{name}' is a Python keyword and cannot be used; "
                      f"rename the variable{hint}", token)
        return name

    def is_get_variable(self) -> bool:
        kinds = [(self.peek(k).kind, self.peek(k).text) for k in range(1, 6)]
        return kinds[0] == ("op", ".") and kinds[1] == ("name", "getVariable") \
            and kinds[2] == ("op", "(") and kinds[3][0] == "str" and kinds[4] == ("op", ")")

    def get_variable(self) -> _Py:
        """``execution.getVariable('x')``: the variable ``x``."""
        for _ in range(4):  # execution . getVariable (
            self.advance()
        literal = self.advance()
        self.advance()
        name = literal.value
        if not (name.isascii() and (name[:1].isalpha() or name[:1] == "_")
                and all(ch.isalnum() or ch == "_" for ch in name)):
            self.fail("execution.getVariable() needs a plain variable name (letters, digits "
                      "and '_')", literal)
        return _Py(self.variable(literal, name), _ATOM)

    def is_prefixed_function(self) -> bool:
        """``fn:contains(...)``: a name, ':', a name and '(' written without spaces."""
        first, colon, second, paren = (self.peek(k) for k in range(4))
        return colon.kind == "op" and colon.text == ":" and second.kind == "name" \
            and paren.kind == "op" and paren.text == "(" \
            and colon.pos == first.pos + len(first.text) and second.pos == colon.pos + 1

    def feel_not(self) -> _Py:
        token = self.advance()
        if not (self.peek().kind == "op" and self.peek().text == "("):
            self.fail("FEEL negation is written as a function: not(...)", token)
        self.advance()
        inner = self.conditional()
        if self.peek().kind == "op" and self.peek().text == ",":
            self.fail("not() takes a single argument", self.peek())
        self.expect(")", "')' closing not(...)")
        return _Py(f"not {_wrap(inner, _NOT)}", _NOT)

    # errors

    def value_expected(self, token: _Token) -> NoReturn:
        if token.kind == "end":
            self.fail("the expression ends where a value is expected", token)
        if self.language == "juel":
            if token.kind == "op" and token.text == "[":
                self.fail("list literals ([...]) are not supported", token)
        else:
            constructs = {
                "[": "lists and ranges ([...]) are not supported",
                "]": "ranges are not supported",
                "{": "contexts ({...}) are not supported",
                "@": "temporal literals (@\"...\") are not supported",
                "?": "the implicit value '?' is not supported",
            }
            if token.kind == "op" and token.text in constructs:
                self.fail(constructs[token.text], token)
            if self.index == 0 and token.kind == "op" and token.text in _FEEL_COMPARISON:
                self.fail("unary tests such as '< 5' are not supported; write a full "
                          "comparison such as 'x < 5'", token)
        specific = self.specific(token)
        self.fail(specific or "a value is expected here", token)

    def unexpected(self, token: _Token, expected: str | None) -> NoReturn:
        specific = self.specific(token)
        if specific:
            self.fail(specific, token)
        previous = self.tokens[self.index - 1] if self.index > 0 else None
        if token.kind in ("name", "num", "str") and previous is not None \
                and (previous.kind in ("name", "num", "str")
                     or (previous.kind == "op" and previous.text == ")")):
            if self.language == "feel" and token.kind == "name" and previous.kind == "name":
                self.fail(f"names containing spaces are not supported (\"{previous.text} "
                          f"{token.text}\" reads as two names)", token)
            self.fail(f"an operator is missing between \"{previous.text}\" and "
                      f"\"{token.text}\"", token)
        if token.kind == "end":
            self.fail(f"the expression ends where {expected} is expected" if expected
                      else "the expression ends too early", token)
        self.fail(f"{expected} is expected here" if expected else "unexpected text", token)

    def specific(self, token: _Token) -> str | None:
        """A message for constructs that are recognisable where an operator may stand."""
        if self.language == "juel":
            messages = {
                "=": "'=' is assignment, not comparison; use '==' or 'eq'",
                "+=": "string concatenation (+=) is not supported",
                "->": "lambda expressions (->) are not supported",
                ";": "several expressions separated by ';' are not supported",
                "instanceof": "'instanceof' is not supported",
            }
        else:
            messages = {
                "==": "'==' is not FEEL; compare with '='",
                "&&": "'&&' is not FEEL; use 'and'",
                "||": "'||' is not FEEL; use 'or'",
                "!": "'!' is not FEEL; negate with not(...)",
                "..": "ranges (a..b) are not supported",
                "**": "exponentiation (**) is not supported",
                "%": "'%' is not a FEEL operator",
                "in": _FEEL_CONSTRUCTS["in"],
                "between": _FEEL_CONSTRUCTS["between"],
                "instance": _FEEL_CONSTRUCTS["instance"],
            }
        if token.kind in ("op", "name"):
            return messages.get(token.text)
        return None

