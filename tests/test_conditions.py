"""Conditions drawn in Camunda Modeler (JUEL ``${...}``, FEEL ``=...``) run in the sandbox
with the meaning the designer wrote, or are refused with a message naming the problem."""

from __future__ import annotations

from typing import Any

import pytest

from onestop.bpmn.conditions import ConditionSyntaxError, dialect, translate
from onestop.bpmn.sandbox import Sandbox, check
from onestop.errors import ModelError

SANDBOX = Sandbox()


def run(condition: str, **data: Any) -> Any:
    """Translate ``condition`` and evaluate it over ``data`` as the engine would."""
    expression = translate(condition)
    check(expression, "eval")
    return SANDBOX.evaluate(expression, data)


# --------------------------------------------------------------------------- dialects

@pytest.mark.parametrize(("text", "expected"), [
    ("${outcome == 'accept'}", "juel"),
    ("  #{a && !b}\n", "juel"),
    ('=outcome = "accept"', "feel"),
    ("\n  = amount > 100", "feel"),
    ('outcome == "accept"', "python"),
    ("approved == True", "python"),
    ("'${x}' == note", "python"),  # a Python string that happens to contain ${
    ("", "python"),
    ("x ${a}", "juel"),  # JUEL with text around it (refused by translate)
])
def test_dialect_is_recognised_from_the_text(text, expected):
    assert dialect(text) == expected


@pytest.mark.parametrize("text", [
    'outcome == "accept"',
    "approved == True",
    "len(items) > 0 and not paid",
    "'${x}' == note",
    "amount >= 100 if urgent else amount >= 500",
])
def test_plain_python_is_returned_unchanged(text):
    assert translate(text) == text
    assert translate(f"\n   {text}  \n") == text


# --------------------------------------------------------------------------- JUEL

@pytest.mark.parametrize(("juel", "python"), [
    ("${outcome == 'accept'}", "outcome == 'accept'"),
    ('${outcome == "accept"}', "outcome == 'accept'"),
    ("#{outcome != 'reject'}", "outcome != 'reject'"),
    ("${amount < 100}", "amount < 100"),
    ("${amount <= 100}", "amount <= 100"),
    ("${amount > 100}", "amount > 100"),
    ("${amount >= 100}", "amount >= 100"),
    ("${a eq b}", "a == b"),
    ("${a ne b}", "a != b"),
    ("${a lt b}", "a < b"),
    ("${a le b}", "a <= b"),
    ("${a gt b}", "a > b"),
    ("${a ge b}", "a >= b"),
    ("${a && b}", "a and b"),
    ("${a and b}", "a and b"),
    ("${a || b}", "a or b"),
    ("${a or b}", "a or b"),
    ("${!a}", "not a"),
    ("${not a}", "not a"),
    ("#{a && !b}", "a and not b"),
    ("${empty docs}", "docs in (None, '', [], {})"),
    ("${!empty docs}", "not docs in (None, '', [], {})"),
    ("${approved == true}", "approved == True"),
    ("${approved == false}", "approved == False"),
    ("${note == null}", "note == None"),
    ("${a + b - c}", "a + b - c"),
    ("${a * b / c % d}", "a * b / c % d"),
    ("${a div b}", "a / b"),
    ("${a mod b}", "a % b"),
    ("${-a}", "-a"),
    ("${- -a}", "-(-a)"),
    ("${(a)}", "a"),
    ("${fee > 1.5}", "fee > 1.5"),
    ("${fee > 1.5e3}", "fee > 1500.0"),
    ("${fee > .5}", "fee > 0.5"),
    ("${days == 007}", "days == 7"),  # Python refuses leading zeros; JUEL reads decimal
    ("${urgent ? 3 : 15}", "3 if urgent else 15"),
    ("${execution.getVariable('outcome') == 'accept'}", "outcome == 'accept'"),
    ('${execution.getVariable("outcome") == "accept"}', "outcome == 'accept'"),
    ("\n      ${approved &&\n       amount > 0}\n   ", "approved and amount > 0"),
])
def test_juel_operators_are_translated(juel, python):
    assert translate(juel) == python
    check(translate(juel), "eval")


@pytest.mark.parametrize(("juel", "python"), [
    # JUEL's unary ! binds tighter than ==: (!a) == b, not !(a == b)
    ("${!a == b}", "(not a) == b"),
    ("${not a > 3}", "(not a) > 3"),
    ("${empty a == b}", "(a in (None, '', [], {})) == b"),
    ("${!a && b}", "not a and b"),
    ("${!(a && b)}", "not (a and b)"),
    ("${a || b && c}", "a or b and c"),
    ("${(a || b) && c}", "(a or b) and c"),
    ("${a - (b - c)}", "a - (b - c)"),
    ("${-(a + b) * c}", "-(a + b) * c"),
    ("${(a < b) == c}", "(a < b) == c"),
    ("${a == (b < c)}", "a == (b < c)"),
    ("${a ? b : c ? d : e}", "b if a else d if c else e"),
    ("${a ? b ? 1 : 2 : 3}", "(1 if b else 2) if a else 3"),
    ("${(a ? 1 : 2) == x}", "(1 if a else 2) == x"),
    ("${a > 1 || b ? 'x' : 'y'}", "'x' if a > 1 or b else 'y'"),
])
def test_juel_structure_is_kept_with_explicit_parentheses(juel, python):
    assert translate(juel) == python


# Truth values worked out by hand from JUEL's precedence rules (values as Python sees them).
JUEL_CASES = [
    ("${a || b && c}", dict(a=True, b=False, c=False), True),
    ("${(a || b) && c}", dict(a=True, b=False, c=False), False),
    ("${!a && b}", dict(a=False, b=False), False),
    ("${not a && b}", dict(a=False, b=True), True),
    ("${!(a && b)}", dict(a=True, b=False), True),
    ("${!a == b}", dict(a=False, b=True), True),
    ("${!a == b}", dict(a=None, b=False), False),  # (!null) == false; not !(null == false)
    ("${empty a == b}", dict(a="", b=False), False),  # (empty '') == false
    ("${a + b * c == 7}", dict(a=1, b=2, c=3), True),
    ("${(a + b) * c == 9}", dict(a=1, b=2, c=3), True),
    ("${a - b - c == -4}", dict(a=1, b=2, c=3), True),
    ("${a - (b - c) == 2}", dict(a=1, b=2, c=3), True),
    ("${a / b * c == 6}", dict(a=4, b=2, c=3), True),
    ("${a div b mod c == 2}", dict(a=20, b=4, c=3), True),
    ("${a mod b == 1}", dict(a=7, b=3), True),
    ("${-a * b == -6}", dict(a=2, b=3), True),
    ("${-a > b}", dict(a=-5, b=4), True),
    ("${- -a == a}", dict(a=3), True),
    ("${(a < b) == c}", dict(a=1, b=2, c=True), True),
    ("${a lt b and c ge d}", dict(a=1, b=2, c=5, d=5), True),
    ("${x eq 'y' or z ne 'w'}", dict(x="n", z="w"), False),
    ("${a == b || c != d && e}", dict(a=1, b=2, c=1, d=2, e=False), False),
    ("${a ? b : c ? d : e}", dict(a=True, b="B", c=True, d="D", e="E"), "B"),
    ("${a ? b : c ? d : e}", dict(a=False, b="B", c=True, d="D", e="E"), "D"),
    ("${a ? b : c ? d : e}", dict(a=False, b="B", c=False, d="D", e="E"), "E"),
    ("${a ? b ? 1 : 2 : 3}", dict(a=True, b=False), 2),
    ("${a ? b ? 1 : 2 : 3}", dict(a=False, b=True), 3),
    ("${a ? 1 : 2 == 1}", dict(a=False), False),  # a ? 1 : (2 == 1)
    ("${a > 1 ? 'big' : 'small'}", dict(a=5), "big"),
    ("${empty a}", dict(a=None), True),
    ("${empty a}", dict(a=""), True),
    ("${empty a}", dict(a=[]), True),
    ("${empty a}", dict(a={}), True),
    ("${empty a}", dict(a=0), False),  # JUEL: empty 0 is false
    ("${empty a}", dict(a=False), False),
    ("${empty a}", dict(a="x"), False),
    ("${empty a}", dict(a=[0]), False),
    ("${not empty a}", dict(a=["CCCD"]), True),
    ("${outcome == 'accept'}", dict(outcome="accept"), True),
    ("${outcome == 'accept'}", dict(outcome="reject"), False),
    ("${execution.getVariable('amount') >= 100}", dict(amount=150), True),
]


@pytest.mark.parametrize(("juel", "data", "expected"), JUEL_CASES)
def test_juel_conditions_evaluate_as_in_camunda(juel, data, expected):
    assert run(juel, **data) == expected


# --------------------------------------------------------------------------- FEEL

@pytest.mark.parametrize(("feel", "python"), [
    ('=outcome = "accept"', "outcome == 'accept'"),
    ('=outcome != "reject"', "outcome != 'reject'"),
    ("=amount < 100", "amount < 100"),
    ("=amount <= 100", "amount <= 100"),
    ("=amount > 100", "amount > 100"),
    ("=amount >= 100", "amount >= 100"),
    ("=a and b", "a and b"),
    ("=a or b", "a or b"),
    ("=not(a)", "not a"),
    ("=amount > 100 and not(paid)", "amount > 100 and not paid"),
    ("=not(a and b) or c", "not (a and b) or c"),
    ("=not(a) = b", "(not a) == b"),
    ("=approved = true", "approved == True"),
    ("=approved = false", "approved == False"),
    ("=note = null", "note == None"),
    ("=a + b - c * d / e", "a + b - c * d / e"),
    ("=-a", "-a"),
    ("=fee > 1.5", "fee > 1.5"),
    ("=fee > .5", "fee > 0.5"),
    ("=(a or b) and c", "(a or b) and c"),
    ("=(a < b) = c", "(a < b) == c"),
    ("= x=1", "x == 1"),
])
def test_feel_operators_are_translated(feel, python):
    assert translate(feel) == python
    check(translate(feel), "eval")


FEEL_CASES = [
    ("=a or b and c", dict(a=True, b=False, c=False), True),
    ("=(a or b) and c", dict(a=True, b=False, c=False), False),
    ("=not(a) = b", dict(a=True, b=False), True),
    ("=not(a and b) or c", dict(a=True, b=True, c=False), False),
    ("=a + b * c = 7", dict(a=1, b=2, c=3), True),
    ("=(a + b) * c = 9", dict(a=1, b=2, c=3), True),
    ("=a - b - c = -4", dict(a=1, b=2, c=3), True),
    ("=a / b * c = 6", dict(a=4, b=2, c=3), True),
    ("=-a * b = -6", dict(a=2, b=3), True),
    ("=(a < b) = c", dict(a=1, b=2, c=True), True),
    ("=amount > 100 and not(paid)", dict(amount=150, paid=False), True),
    ("=amount > 100 and not(paid)", dict(amount=150, paid=True), False),
    ("=amount > 100 and not(paid)", dict(amount=50, paid=False), False),
    ("=x != null", dict(x=None), False),
    ("=x != null", dict(x=1), True),
]


@pytest.mark.parametrize(("feel", "data", "expected"), FEEL_CASES)
def test_feel_conditions_evaluate_as_in_camunda(feel, data, expected):
    assert run(feel, **data) == expected


# --------------------------------------------------------------------------- strings

@pytest.mark.parametrize(("condition", "python", "value"), [
    ("${note == 'a && b'}", "note == 'a && b'", "a && b"),
    ("${note == 'x == y || !z'}", "note == 'x == y || !z'", "x == y || !z"),
    ("${note == 'not empty div mod'}", "note == 'not empty div mod'", "not empty div mod"),
    ("${note == '}'}", "note == '}'", "}"),
    ("${note == '${x}'}", "note == '${x}'", "${x}"),
    ("${note == 'it\\'s'}", 'note == "it\'s"', "it's"),
    ('${note == "say \\"hi\\""}', "note == 'say \"hi\"'", 'say "hi"'),
    ("${note == 'a\\\\b'}", "note == 'a\\\\b'", "a\\b"),
    ('=note = "a and not(b) or c = d"', "note == 'a and not(b) or c = d'",
     "a and not(b) or c = d"),
    ('=note = "say \\"hi\\""', "note == 'say \"hi\"'", 'say "hi"'),
    ('=note = "line\\nbreak"', "note == 'line\\nbreak'", "line\nbreak"),
    ('=note = "it\'s"', 'note == "it\'s"', "it's"),
    ('=note = "\\u0110\\u1ED3ng \\u00FD"', "note == 'Đồng ý'", "Đồng ý"),
])
def test_string_literals_keep_their_content(condition, python, value):
    assert translate(condition) == python
    assert run(condition, note=value) is True
    assert run(condition, note=value + "!") is False


@pytest.mark.parametrize(("condition", "python"), [
    ("${ket_qua == 'Đồng ý'}", "ket_qua == 'Đồng ý'"),
    ('${ket_qua == "Không đồng ý"}', "ket_qua == 'Không đồng ý'"),
    ('=ket_qua = "Đồng ý"', "ket_qua == 'Đồng ý'"),
    ("${ly_do != 'Hồ sơ thiếu giấy tờ'}", "ly_do != 'Hồ sơ thiếu giấy tờ'"),
])
def test_vietnamese_text_round_trips(condition, python):
    assert translate(condition) == python
    data = {"ket_qua": "Đồng ý", "ly_do": "Hồ sơ đầy đủ"}
    expected = "Không" not in condition
    assert run(condition, **data) is expected


# --------------------------------------------------------------------------- refusals

JUEL_REFUSALS = [
    ("${x.size() > 0}", "method calls are not supported", "size"),
    ("${dossier.status == 'done'}", "property access (a.b) is not supported", "status"),
    ("${execution.getVariable(name)}", "method calls are not supported", "getVariable"),
    ("${execution.getVariable('a b')}", "plain variable name", "'a b'"),
    ("${execution.getVariable('x').size()}", "method calls are not supported", "size"),
    ("${fn:contains(note, 'x')}", "function calls are not supported", "fn:contains"),
    ("${size(docs) > 0}", "function calls are not supported", "size"),
    ("${docs[0] == 'x'}", "index access (a[...]) is not supported", "["),
    ("${[1, 2]}", "list literals ([...]) are not supported", "["),
    ("${{1, 2}}", "set and map literals ({...}) are not supported", "{"),
    ("${a < b < c}", "chained comparison is ambiguous", "<"),
    ("${a == b == c}", "chained comparison is ambiguous", "=="),
    ("${a < b == c}", "chained comparison is ambiguous", "=="),
    ("${a == b < c}", "chained comparison is ambiguous", "<"),
    ("${a = b}", "'=' is assignment, not comparison", "="),
    ("${a += 'x'}", "string concatenation (+=) is not supported", "+="),
    ("${x -> x > 1}", "lambda expressions (->) are not supported", "->"),
    ("${a; b}", "separated by ';' are not supported", ";"),
    ("${a instanceof b}", "'instanceof' is not supported", "instanceof"),
    ("${a & b}", "use '&&'", "&"),
    ("${a | b}", "use '||'", "|"),
    ("${a b}", 'an operator is missing between "a" and "b"', "b"),
    ("${a ? b}", "the ':' of 'condition ? value : other value'", None),
    ("${(a == b}", "')'", None),
    ("${a ==}", "the expression ends where a value is expected", None),
    ("${}", "the expression is empty", None),
    ("${a == b", "the closing '}' is missing", None),
    ("${note == 'open}", "the string is not closed", "'open}"),
    ("${note == 'a\\nb'}", "unknown escape", "\\n"),
    ("x ${a}", "nothing before it", "x"),
    ("${a} and ${b}", "nothing after it", "and ${b}"),
    ("${a ${b}}", "nested ${...} expressions are not supported", "${"),
    ("${_secret}", "names starting with '_' are reserved", "_secret"),
    ("${__class__ == 1}", "names starting with '_' are reserved", "__class__"),
    ("${execution.getVariable('_x')}", "names starting with '_' are reserved", "'_x'"),
    ("${class == 'A'}", "'class' is a Python keyword", "class"),
    ("${from > 1}", "'from' is a Python keyword", "from"),
    ("${lambda}", "'lambda' is a Python keyword", "lambda"),
    ("${True}", "'True' is a Python keyword", "True"),
    ("${kết_quả == 'x'}", "ASCII letters, digits and '_'", "kết_quả"),
    ("${a == 1e999}", "the number is too large", "1e999"),
    ("${a == b and}", "the expression ends where a value is expected", None),
]

FEEL_REFUSALS = [
    ("=dossier.status = \"done\"", "paths (a.b) are not supported", "status"),
    ('=date("2025-01-01") > today', "function calls are not supported", "date"),
    ("=count(docs) > 0", "function calls are not supported", "count"),
    ("=x in [1..5]", "'in' tests (lists and ranges) are not supported", "in"),
    ("=x in (1..5)", "'in' tests (lists and ranges) are not supported", "in"),
    ("=[1, 2, 3]", "lists and ranges ([...]) are not supported", "["),
    ("=(1..5)", "ranges (a..b) are not supported", ".."),
    ("=]1..5]", "ranges are not supported", "]"),
    ("=x between 1 and 5", "'between' is not supported", "between"),
    ("=x instance of number", "'instance of' is not supported", "instance"),
    ("=some d in docs satisfies d = 1", "quantified expressions (some", "some"),
    ("=every d in docs satisfies d = 1", "quantified expressions (every", "every"),
    ("=for d in docs return d", "for loops", "for"),
    ("=if a then b else c", "if-then-else expressions are not supported", "if"),
    ("=function(x) x", "function definitions are not supported", "function"),
    ('={status: "done"}.status', "contexts ({...}) are not supported", "{"),
    ('=due < @"2025-01-01"', "temporal literals (@\"...\") are not supported", "@"),
    ("=docs[1]", "filters (a[...]) are not supported", "["),
    ("=? > 5", "the implicit value '?' is not supported", "?"),
    ("=< 5", "unary tests such as '< 5' are not supported", "<"),
    ("=ket qua = 1", "names containing spaces are not supported", "qua"),
    ("=outcome = 'accept'", "single quotes are not FEEL", "'"),
    ("=a == b", "'==' is not FEEL; compare with '='", "=="),
    ("=a && b", "'&&' is not FEEL; use 'and'", "&&"),
    ("=a || b", "'||' is not FEEL; use 'or'", "||"),
    ("=!a", "'!' is not FEEL; negate with not(...)", "!"),
    ("=not a", "FEEL negation is written as a function: not(...)", "not"),
    ("=not(a, b)", "not() takes a single argument", ","),
    ("=a ** 2 > 4", "exponentiation (**) is not supported", "**"),
    ("=a % 2 = 0", "'%' is not a FEEL operator", "%"),
    ("=a < b < c", "chained comparison is ambiguous", "<"),
    ("=a = b = c", "chained comparison is ambiguous", "="),
    ("=`ket qua` = 1", "names in backquotes are not supported", "`"),
    ('=note = "\\x41"', "unknown escape", "\\x"),
    ('=note = "\\u12"', "\\u must be followed by 4 hexadecimal digits", "\\u12\""),
    ("=", "the expression is empty", None),
    ("=_x = 1", "names starting with '_' are reserved", "_x"),
    ("=from = 1", "'from' is a Python keyword", "from"),
    ("=a and", "the expression ends where a value is expected", None),
]


@pytest.mark.parametrize(("condition", "reason", "token"), JUEL_REFUSALS + FEEL_REFUSALS)
def test_untranslatable_conditions_are_refused_naming_the_construct(condition, reason, token):
    with pytest.raises(ConditionSyntaxError) as refused:
        translate(condition)
    message = str(refused.value)
    language = "JUEL" if dialect(condition) == "juel" else "FEEL"
    assert message.startswith(f'{language} condition "{condition.strip()}": ')
    assert reason in message
    assert refused.value.token == token
    assert message.endswith(f'(at "{token}")' if token is not None else "(at the end)")


def test_the_error_names_dialect_expression_and_token():
    with pytest.raises(ConditionSyntaxError) as refused:
        translate("  ${x.size() > 0}  ")
    error = refused.value
    assert str(error) == ('JUEL condition "${x.size() > 0}": method calls are not supported '
                          '(at "size")')
    assert error.dialect == "juel" and error.expression == "${x.size() > 0}"
    assert error.reason == "method calls are not supported"
    assert error.token == "size" and error.position == "${x.size() > 0}".index("size")


def test_the_error_is_a_value_error_and_a_model_error():
    with pytest.raises(ValueError):
        translate("=a.b")
    with pytest.raises(ModelError):
        translate("=a.b")


# --------------------------------------------------------------------------- sandbox

@pytest.mark.parametrize("condition", sorted(
    {case[0] for case in JUEL_CASES + FEEL_CASES}
    | {"${a ? -b : !c}", "${empty a ? null : b}", "${x div 2 mod 3}"}))
def test_translations_pass_the_sandbox_check(condition):
    expression = translate(condition)
    tree = check(expression, "eval")
    assert tree is not None
    # The translation is a single Python expression, whatever the input's layout.
    assert "\n" not in expression and expression == expression.strip()
