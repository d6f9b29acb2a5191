"""The restricted evaluator for conditions and scripts in models.

Models are data, not programs: a condition such as ``outcome == "accept"`` or a short
script that sets a variable is all a one-stop model needs. Every expression and script is
checked against a whitelist of Python syntax before it runs (and when the model loads):
no imports, no function or class definitions, no ``while`` loops, no name or attribute
starting with ``_``, attribute access only to a short list of methods of plain data, and
builtins limited to pure functions. Nothing can reach files, the network, or the
interpreter's internals.

Every evaluation also runs under a budget, so that a runaway or hostile model cannot hang
a command (which holds the database's write lock) or exhaust memory: ``9**9**9``,
``"x" * 3_000_000_000``, ``for i in range(10**12): ...`` and their kin stop with
:class:`~onestop.errors.BudgetExceeded`. The budget is deterministic (it counts, it never
looks at a clock), so a simulation replays the same way:

* **steps**: each loop or comprehension iteration (weighted by the size of its body) and
  each guarded operation; at most :data:`MAX_STEPS`;
* **work**: the sizes of the values built or scanned by guarded operations (items,
  characters, 64-bit words of big numbers, deep sizes when a comparison, ``in``, a hash
  or a conversion to text walks nested data); at most :data:`MAX_WORK`;
* **size of one value**: at most :data:`MAX_ITEMS` items or characters, and numbers of at
  most :data:`MAX_INT_BITS` bits, checked *before* the value is built.

The budget is enforced by rewriting the checked syntax tree before it is compiled (once
per source): operators, comparisons over containers, calls of builtins and methods,
subscripts, f-strings, displays with ``*``, and the iterables of loops and comprehensions
are routed through guards, which price an operation from the sizes of its operands (and
refuse it) *before* Python runs it. The guards are methods of the evaluation's budget,
the one name the rewrite adds to the scope: ``__onestop_budget__.mult(x, y)``. Model code
cannot name it (names starting with ``_`` are refused) and data cannot stand in for it
(it is set after the data). Valid expressions keep their Python meaning, in-place
operators included; only their cost is counted. What needs no guard stays as written, so
a plain condition such as ``outcome == "accept"`` or ``len(to_digitize) > 0`` runs at the
speed it always did.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from functools import partial
from itertools import chain, compress, repeat
from types import BuiltinFunctionType, GeneratorType, MethodDescriptorType, ModuleType
from typing import Any, Callable, Iterable, Iterator, Mapping, MutableMapping, NoReturn

from ..errors import BudgetExceeded, ModelError, UnsafeModelError

SAFE_BUILTINS: dict[str, Any] = {
    name: obj for name, obj in {
        "abs": abs, "all": all, "any": any, "bool": bool, "dict": dict,
        "enumerate": enumerate, "float": float, "int": int, "len": len, "list": list,
        "max": max, "min": min, "range": range, "reversed": reversed, "round": round,
        "set": set, "sorted": sorted, "str": str, "sum": sum, "tuple": tuple, "zip": zip,
    }.items()
}

#: Methods of str, list and dict that only compute or update plain data.
SAFE_METHODS = frozenset({
    # dict
    "get", "keys", "values", "items", "setdefault", "update", "copy",
    # list
    "append", "extend", "index", "count", "insert", "remove", "pop", "sort", "reverse",
    # str
    "lower", "upper", "strip", "lstrip", "rstrip", "split", "rsplit", "join", "replace",
    "startswith", "endswith", "find", "isdigit", "isalpha", "isalnum", "title",
    "capitalize", "casefold", "zfill", "splitlines", "partition",
})

# The limits: far above what a one-stop model needs (a loop over a few hundred items, a
# fee computed from a handful of numbers), far below what hurts: exhausting any of them,
# or both at once, takes about a tenth of a second here (at most 0.13 s measured).
#: Steps one evaluation may take: loop and comprehension iterations (an iteration counts
#: one step, plus one per ten syntax nodes of the loop's body) and guarded operations.
MAX_STEPS = 150_000
#: Units of work one evaluation may do (a unit is about ten nanoseconds): items,
#: characters and 64-bit words of the values guarded operations build or scan (a nested
#: value counts everything in it, as often as the operation reaches it).
MAX_WORK = 6_000_000
#: Items (of a list, tuple, dict or set) or characters (of a text) of any one value built.
MAX_ITEMS = 1_000_000
#: Bits of any one integer built (about 9,864 decimal digits).
MAX_INT_BITS = 32_768
#: Decimal digits of :data:`MAX_INT_BITS`: ``round(n, -d)`` of a whole number allows at most
#: this many ``d``.
MAX_INT_DIGITS = MAX_INT_BITS * 30103 // 100000
#: Nesting of the values a comparison, a hash or a conversion to text walks.
MAX_VALUE_NESTING = 256
#: Nesting of the syntax of a condition or script.
MAX_SOURCE_DEPTH = 200

_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Module, ast.Expression, ast.Expr, ast.Assign, ast.AugAssign, ast.If, ast.For,
    ast.Pass, ast.Break, ast.Continue,
    ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp, ast.Call, ast.keyword,
    ast.Dict, ast.Set, ast.List, ast.Tuple, ast.ListComp, ast.SetComp, ast.DictComp,
    ast.GeneratorExp, ast.comprehension, ast.Constant, ast.Name, ast.Attribute,
    ast.Subscript, ast.Slice, ast.Starred, ast.JoinedStr, ast.FormattedValue,
    ast.Load, ast.Store, ast.boolop, ast.operator, ast.unaryop, ast.cmpop,
)

_WHY_FORBIDDEN = {
    ast.Import: "imports are not allowed",
    ast.ImportFrom: "imports are not allowed",
    ast.FunctionDef: "defining functions is not allowed",
    ast.AsyncFunctionDef: "defining functions is not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.ClassDef: "defining classes is not allowed",
    ast.While: "while loops are not allowed (use for over data)",
    ast.With: "with blocks are not allowed",
    ast.Try: "try blocks are not allowed",
    ast.Raise: "raise is not allowed",
    ast.Global: "global is not allowed",
    ast.Nonlocal: "nonlocal is not allowed",
    ast.Delete: "del is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.Await: "await is not allowed",
}


def check(source: str, mode: str = "eval") -> ast.AST:
    """Parse ``source`` and verify it uses only permitted syntax.

    ``mode`` is ``"eval"`` for conditions and ``"exec"`` for scripts. Raises
    :class:`UnsafeModelError` (forbidden construct) or :class:`ModelError` (syntax error,
    or syntax nested too deeply).
    """
    what = "condition" if mode == "eval" else "script"
    try:
        tree = ast.parse(source.strip() if mode == "eval" else source, mode=mode)
    except SyntaxError as exc:
        if "too many nested" in (exc.msg or ""):
            raise _too_deep(what, source) from None
        raise ModelError(f"syntax error in {what} {source.strip()!r}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        # The parser's own limits on nesting (its stack, not the machine's memory).
        raise _too_deep(what, source) from None
    if _depth_exceeds(tree, MAX_SOURCE_DEPTH):
        raise _too_deep(what, source)
    nodes = list(ast.walk(tree))
    # Report the most telling problem first: forbidden constructs, then reserved names,
    # then what may be called or accessed.
    for check_nodes in (_forbidden, _reserved, _calls, _attributes):
        check_nodes(nodes, source.strip())
    return tree


def _forbidden(nodes: list[ast.AST], shown: str) -> None:
    for node in nodes:
        if not isinstance(node, _ALLOWED_NODES):
            why = _WHY_FORBIDDEN.get(type(node), f"{type(node).__name__} is not allowed")
            raise UnsafeModelError(f"{why} in {shown!r}")


def _reserved(nodes: list[ast.AST], shown: str) -> None:
    for node in nodes:
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise UnsafeModelError(f"name {node.id!r} is not allowed (names starting "
                                   f"with '_' are reserved) in {shown!r}")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise UnsafeModelError(f"attribute {node.attr!r} is not allowed (names starting "
                                   f"with '_' are reserved) in {shown!r}")


def _calls(nodes: list[ast.AST], shown: str) -> None:
    for node in nodes:
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id not in SAFE_BUILTINS:
                raise UnsafeModelError(f"calling {func.id!r} is not allowed (allowed: "
                                       f"{', '.join(sorted(SAFE_BUILTINS))}) in {shown!r}")
            if not isinstance(func, (ast.Name, ast.Attribute)):
                raise UnsafeModelError(f"only named functions and data methods may be "
                                       f"called in {shown!r}")


def _attributes(nodes: list[ast.AST], shown: str) -> None:
    for node in nodes:
        if isinstance(node, ast.Attribute) and node.attr not in SAFE_METHODS:
            raise UnsafeModelError(f"attribute {node.attr!r} is not allowed in {shown!r} "
                                   f"(allowed methods: get, keys, values, items, lower, "
                                   f"upper, strip, split, join, ...)")


def _too_deep(what: str, source: str) -> ModelError:
    return ModelError(f"{what} {_shorten(source)!r} is too deeply nested (at most "
                      f"{MAX_SOURCE_DEPTH} levels of brackets, operators and blocks)")


def _depth_exceeds(tree: ast.AST, limit: int) -> bool:
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node)
                     if not isinstance(child, ast.expr_context))
    return False


def _shorten(source: str, width: int = 80) -> str:
    text = " ".join(source.split())
    return text if len(text) <= width else text[:width - 1] + "…"


class Sandbox:
    """Compiles checked sources once and runs them against task data, each run under a
    fresh budget."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[Any, bool]] = {}

    def _compiled(self, source: str, mode: str) -> tuple[Any, bool]:
        key = (source, mode)
        found = self._cache.get(key)
        if found is None:
            tree = check(source, mode)
            rewriter = _Rewriter(tree)
            try:
                tree = ast.fix_missing_locations(rewriter.visit(tree))
                found = (compile(tree, "<model>", mode), rewriter.guarded)
            except RecursionError:  # check() bounds the nesting; a deep caller did not
                raise _too_deep("condition" if mode == "eval" else "script", source) \
                    from None
            self._cache[key] = found
        return found

    def evaluate(self, expression: str, data: Mapping[str, Any]) -> Any:
        """Evaluate a condition or expression over ``data``.

        :class:`~onestop.errors.BudgetExceeded` when it goes beyond the budget."""
        code, guarded = self._compiled(expression, "eval")
        scope: dict[str, Any] = dict(data)
        scope["__builtins__"] = SAFE_BUILTINS
        if guarded:
            scope[_BUDGET] = _Budget(expression)
        return eval(code, scope)  # noqa: S307 - the code passed check() above

    def execute(self, script: str, data: MutableMapping[str, Any]) -> None:
        """Run a script; variables it assigns are written back into ``data``.

        :class:`~onestop.errors.BudgetExceeded` when it goes beyond the budget (storing
        the variables counts too: they are written out as JSON, shared parts repeated);
        nothing is written back then, nor when a variable cannot be stored."""
        code, _guarded = self._compiled(script, "exec")
        scope: dict[str, Any] = dict(data)
        scope["__builtins__"] = SAFE_BUILTINS
        budget = scope[_BUDGET] = _Budget(script)
        exec(code, scope)  # noqa: S102 - the code passed check() above
        del scope["__builtins__"]
        scope.pop(_BUDGET, None)
        for key, value in scope.items():
            if type(value) in _WALKED and value:
                _walk(budget, value, True)  # JSON repeats what is shared: count it all
            _ensure_storable(key, value)
        for key in list(data):
            if key not in scope:
                del data[key]
        data.update(scope)


def _ensure_storable(key: str, value: Any) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise ModelError(f"script set {key!r} to a {type(value).__name__}, which cannot be "
                         f"stored (use numbers, text, lists and dicts)") from None


# =========================================================================== the budget

_BUDGET = "__onestop_budget__"


class _Budget:
    """What is left of one evaluation's budget."""

    __slots__ = ("steps", "work", "source")

    def __init__(self, source: str) -> None:
        self.steps = MAX_STEPS
        self.work = MAX_WORK
        self.source = source


def _fail(b: _Budget, reason: str) -> NoReturn:
    raise BudgetExceeded(f"{reason}, in {_shorten(b.source)!r}")


def _over(b: _Budget) -> NoReturn:
    if b.steps < 0:
        _fail(b, f"more than {MAX_STEPS:,} steps (loop iterations and guarded operations)")
    _fail(b, f"more than {MAX_WORK:,} units of work (sizes of the values built or scanned)")


def _spend(b: _Budget, units: int) -> None:
    """One guarded operation of ``units`` of work."""
    b.steps -= 1
    b.work -= units
    if b.steps < 0 or b.work < 0:
        _over(b)


def _too_big(b: _Budget, size: int | str, what: str = "items or characters") -> NoReturn:
    _fail(b, f"a value of {_count(size)} {what} would be built (at most {MAX_ITEMS:,})")


def _too_many_bits(b: _Budget, bits: int) -> NoReturn:
    _fail(b, f"a number of about {_count(bits)} bits would be built (at most "
             f"{MAX_INT_BITS:,})")


def _count(size: int | str) -> str:
    """A size for a message; one too large to print in full (past Python's limit on
    converting integers to text) as its order of magnitude."""
    if not isinstance(size, int):
        return str(size)
    if size.bit_length() > 10_000:
        return f"about 2**{size.bit_length() - 1:,}"
    return f"{size:,}"


_STRINGS = frozenset({str, bytes})
_SEQUENCES = frozenset({str, bytes, list, tuple})
_HASHED = frozenset({dict, set, frozenset, type({}.keys()), type({}.items())})
_WALKED = frozenset({list, tuple, dict, set, frozenset, type({}.keys()), type({}.values()),
                     type({}.items())})
_SIZED = _WALKED | _STRINGS | {range}
_INTS = frozenset({int, bool})

_IS: dict[type, Callable[[Any], bool]] = {
    t: partial(operator.is_, t) for t in (str, bytes, int, float, complex, dict)}
_NOT_DICT = partial(operator.is_not, dict)
_IS_WALKED = _WALKED.__contains__

# What a walk charges, in units of work (one unit: about ten nanoseconds of C code here):
#: per container reached, and per item of it (for a comparison, a hash, a search);
_WALK_CONTAINER = 8
_WALK_ITEM = 2
#: per item when the value is converted to text (str(), an f-string, JSON), and per
#: float or complex number in it (their shortest repr takes up to a microsecond);
_TEXT_ITEM = 8
_TEXT_FLOAT = 150
#: steps a walk counts besides its work (its fixed cost);
_WALK_STEPS = 2
#: a container of at most this many items is walked by a plain loop.
_SMALL = 16
#: Units per item a new set or dict hashes in, or a copy from a range or text creates.
_HASH_ITEM = 5
_CREATE_ITEM = 3


def _walk(b: _Budget, value: Any, text: bool = False) -> int:
    """Charge and return the deep size of the container ``value``: every item of every
    container as often as it is reached (``[x] * 1000`` reaches ``x`` a thousand times),
    characters (a sixteenth of them unless ``text``) and words of numbers. ``text``
    prices a conversion to text (``str()``, an f-string, storage as JSON) rather than a
    comparison, a hash or a search. The scan runs at C speed, level by level, and stops
    as soon as the budget is spent."""
    b.steps -= _WALK_STEPS
    if b.steps < 0:
        _over(b)
    per_item = _TEXT_ITEM if text else _WALK_ITEM
    if len(value) <= _SMALL:
        flat = _flat_units(value, per_item, text)
        if flat is not None:
            b.work -= flat
            if b.work < 0:
                _over(b)
            return flat
    level: list[Any] = [value]
    total = 0
    for _depth in range(MAX_VALUE_NESTING):
        if dict in set(map(type, level)):
            types = list(map(type, level))
            dicts = list(compress(level, map(_IS[dict], types)))
            level = list(chain(compress(level, map(_NOT_DICT, types)),
                               map(dict.keys, dicts), map(dict.values, dicts)))
        count = sum(map(len, level))
        units = len(level) * _WALK_CONTAINER + count * per_item
        b.work -= units
        if b.work < 0:
            _over(b)
        total += units
        kinds = set(map(type, chain.from_iterable(level)))
        extra = _item_units(level, kinds, count, text)
        b.work -= extra
        if b.work < 0:
            _over(b)
        total += extra
        if kinds.isdisjoint(_WALKED):
            return total
        level = list(compress(chain.from_iterable(level),
                              map(_IS_WALKED, map(type, chain.from_iterable(level)))))
    _fail(b, f"a value nested more than {MAX_VALUE_NESTING} deep (or containing itself) "
             f"was compared, hashed or converted")


def _flat_units(value: Any, per_item: int, text: bool) -> int | None:
    """The size of a small container of plain items, counted one by one (None when it
    holds a container: then it is walked level by level)."""
    total = _WALK_CONTAINER
    for item in (chain(value, value.values()) if type(value) is dict else value):
        t = type(item)
        if t in _WALKED:
            return None
        total += per_item
        if t is str or t is bytes:
            total += len(item) if text else len(item) >> 4
        elif t is int:
            bits = item.bit_length()
            total += (bits >> 2) + ((bits >> 6) ** 2) if text else bits >> 6
        elif text and (t is float or t is complex):
            total += _TEXT_FLOAT
    return total


def _item_units(level: list[Any], kinds: set[type], count: int, text: bool) -> int:
    """What the items of one level of containers cost beyond their number: characters,
    words of numbers, and the containers among them."""
    extra = 0
    for kind in kinds & _STRINGS:
        chars = sum(map(len, _of_type(level, kind)))
        extra += 2 * count + (chars if text else chars >> 4)
    if int in kinds:
        bits = list(map(int.bit_length, _of_type(level, int)))
        extra += 3 * count + ((sum(bits) >> 2) + (sum(map(pow, bits, repeat(2))) >> 12)
                              if text else sum(bits) >> 6)
    if text:
        for kind in kinds & {float, complex}:
            extra += count + _TEXT_FLOAT * sum(map(_IS[kind],
                                                   map(type, chain.from_iterable(level))))
    if not kinds.isdisjoint(_WALKED):
        extra += 2 * count
    return extra


def _of_type(level: list[Any], kind: type) -> Iterator[Any]:
    return compress(chain.from_iterable(level),
                    map(_IS[kind], map(type, chain.from_iterable(level))))


def _eq_units(b: _Budget, x: Any) -> int:
    """What comparing ``x`` for equality with one item may cost (walks containers)."""
    t = type(x)
    if t is str or t is bytes:
        return 1 + (len(x) >> 4)
    if t is int:
        return 1 + int(x.bit_length() >> 6)
    if t in _WALKED:
        return _walk(b, x)
    return 1


def _key_units(b: _Budget, key: Any) -> int:
    """What hashing and looking up ``key`` may cost (walks tuples)."""
    t = type(key)
    if t is str or t is bytes:
        return 1 + (len(key) >> 6)
    if t is int:
        return 1 + int(key.bit_length() >> 6)
    if t is tuple:
        return _walk(b, key)
    return 1


def _text_units(b: _Budget, x: Any) -> int:
    """Charge a conversion of ``x`` to text; return the text's estimated length."""
    t = type(x)
    if t is str:
        return len(x)
    if t is bytes:
        _spend(b, 1 + len(x))
        return 4 * len(x)
    if t is int:
        bits = x.bit_length()
        _spend(b, 1 + ((bits >> 6) ** 2))
        return 1 + int(bits * 30103) // 100000
    if t in _WALKED:
        return _walk(b, x, True)
    _spend(b, _TEXT_FLOAT if t is float or t is complex else 1)
    return 32


# --------------------------------------------------------------------------- iteration

def _iterate(b: _Budget, iterable: Any, weight: int) -> Iterator[Any]:
    """The items of a loop's or comprehension's iterable, ``weight`` steps each."""
    for item in iterable:
        b.steps -= weight
        if b.steps < 0:
            _over(b)
        yield item


def _iterate_unpacking(b: _Budget, iterable: Any, weight: int) -> Iterator[Any]:
    """As :func:`_iterate`, for a target with ``*``: unpacking each item costs its size."""
    for item in iterable:
        b.steps -= weight
        if b.steps < 0:
            _over(b)
        if type(item) in _WALKED:
            _walk(b, item)
        yield item


def _bounded(b: _Budget, iterable: Any, room: int, units: Callable[..., int] | None = None,
             ) -> Iterator[Any]:
    """The items of an iterator consumed by C code: one step each (plus ``units(b,
    item)`` of work), at most ``room`` of them. (A generator expression counts its own
    steps.)"""
    count = 0
    step = 0 if type(iterable) is GeneratorType else 1
    for item in iterable:
        count += 1
        if count > room:
            _too_big(b, f"more than {room:,}", "items")
        b.steps -= step
        if units is not None:
            b.work -= units(b, item)
        if b.steps < 0 or b.work < 0:
            _over(b)
        yield item


def _materialize(b: _Budget, iterable: Any, room: int = MAX_ITEMS) -> Any:
    """``iterable`` itself when it has a size (at most ``room``), else its items in a list
    (counted as they come)."""
    if type(iterable) in _SIZED:
        if len(iterable) > room:
            _too_big(b, len(iterable), "items")
        return iterable
    return list(_bounded(b, iterable, room))


def _star(b: _Budget, value: Any) -> Any:
    """A ``*value`` or ``**value`` in a call or display."""
    if type(value) in _SIZED:
        _spend(b, _copy_units(b, value))
        return value
    return _bounded(b, value, MAX_ITEMS)


def _copy_units(b: _Budget, value: Any) -> int:
    """What copying the items of a sized ``value`` costs (refused beyond the limit)."""
    n = len(value)
    if n > MAX_ITEMS:
        _too_big(b, n, "items")
    t = type(value)
    return 1 + (n if t is list or t is tuple else n * _CREATE_ITEM)


def _star_keys(b: _Budget, value: Any) -> Any:
    """A ``*value`` in a set display: its items are hashed."""
    if type(value) in _SIZED:
        if len(value) > MAX_ITEMS:
            _too_big(b, len(value), "items")
        if type(value) in _WALKED:
            _walk(b, value)
        _spend(b, 1 + len(value) * _HASH_ITEM)
        return value
    return _bounded(b, value, MAX_ITEMS, _key_units)


def _unpack(b: _Budget, value: Any) -> Any:
    """The value of an assignment to a target with ``*``."""
    t = type(value)
    if t in _WALKED:
        _walk(b, value)
    if t in _SIZED:
        _spend(b, _copy_units(b, value))
        return value
    return _bounded(b, value, MAX_ITEMS, _unpack_units)


def _unpack_units(b: _Budget, item: Any) -> int:
    return _walk(b, item) if type(item) in _WALKED else 1


def _sized(b: _Budget, value: Any) -> Any:
    """A display with ``*`` or ``**``, once built."""
    if len(value) > MAX_ITEMS:
        _too_big(b, len(value), "items")
    return value


def _key(b: _Budget, key: Any) -> Any:
    """A key of a dict display or item of a set display."""
    t = type(key)
    b.steps -= 1
    if t is not str and t is not int:
        b.work -= _key_units(b, key)
    else:
        b.work -= _HASH_ITEM
    if b.steps < 0 or b.work < 0:
        _over(b)
    return key


# --------------------------------------------------------------------------- operators
# Each operator has a check that prices (or refuses) it from its operands' sizes before
# anything is computed; the plain guard then computes ``x op y``, the in-place guard
# ``x op= y`` (a list, set or dict changes in place, as in Python).

def _int_product_units(x: int, y: int) -> int:
    """Multiplying or dividing whole numbers: about the product of their sizes."""
    wx, wy = x.bit_length() >> 6, y.bit_length() >> 6
    return 1 + wx + wy + wx * wy


def _int_units(x: int, y: int) -> int:
    """Adding, subtracting, comparing whole numbers: about their size."""
    return 1 + (max(x.bit_length(), y.bit_length()) >> 8)


def _check_int(b: _Budget, value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        _too_many_bits(b, value.bit_length())
    return value


def _pre_add(b: _Budget, x: Any, y: Any) -> None:
    if type(x) in _SEQUENCES and type(y) in _SIZED:
        n = len(x) + len(y)
        if n > MAX_ITEMS:
            _too_big(b, n)
        _spend(b, 1 + n)
    elif isinstance(x, int) and isinstance(y, int):
        _spend(b, _int_units(x, y))
    else:
        _spend(b, 1)


def _add(b: _Budget, x: Any, y: Any) -> Any:
    if type(x) is int and type(y) is int:  # the usual case, kept short
        result = x + y
        bits = result.bit_length()
        b.steps -= 1
        b.work -= 1 + (bits >> 8)
        if b.steps < 0 or b.work < 0:
            _over(b)
        if bits > MAX_INT_BITS:
            _too_many_bits(b, bits)
        return result
    _pre_add(b, x, y)
    return _check_int(b, x + y)


def _sub(b: _Budget, x: Any, y: Any) -> Any:
    if type(x) is int and type(y) is int:
        result = x - y
        bits = result.bit_length()
        b.steps -= 1
        b.work -= 1 + (bits >> 8)
        if b.steps < 0 or b.work < 0:
            _over(b)
        if bits > MAX_INT_BITS:
            _too_many_bits(b, bits)
        return result
    _pre_sub(b, x, y)
    return _check_int(b, x - y)


def _mult(b: _Budget, x: Any, y: Any) -> Any:
    if type(x) is int and type(y) is int:
        bits = x.bit_length() + y.bit_length()
        if bits > MAX_INT_BITS + 1:
            _too_many_bits(b, bits)
        b.steps -= 1
        b.work -= _int_product_units(x, y)
        if b.steps < 0 or b.work < 0:
            _over(b)
        return _check_int(b, x * y)
    _pre_mult(b, x, y)
    return _check_int(b, x * y)


def _iadd(b: _Budget, x: Any, y: Any) -> Any:
    if type(x) is list:
        # Any iterable extends a list: count it first (it might even be the list itself).
        y = _materialize(b, y, MAX_ITEMS)
    _pre_add(b, x, y)
    x += y
    return _check_int(b, x)


def _pre_set_operation(b: _Budget, x: Any, y: Any, grows: bool) -> None:
    """``|``, ``&``, ``^``, ``-``: on numbers, their size; on sets, dicts and dict views,
    their items hashed (``grows``: the result may hold both)."""
    if isinstance(x, int) and isinstance(y, int):
        _spend(b, _int_units(x, y))
        return
    if grows and type(x) in _SIZED and type(y) in _SIZED and len(x) + len(y) > MAX_ITEMS:
        _too_big(b, len(x) + len(y))
    units = 1
    for operand in (x, y):
        t = type(operand)
        if t in _WALKED:
            if t is not set and t is not frozenset and t is not dict:
                _walk(b, operand)  # items to hash
            units += len(operand) * _HASH_ITEM
    _spend(b, units)


def _pre_or(b: _Budget, x: Any, y: Any) -> None:
    _pre_set_operation(b, x, y, True)


def _pre_xor(b: _Budget, x: Any, y: Any) -> None:
    _pre_set_operation(b, x, y, True)


def _pre_and(b: _Budget, x: Any, y: Any) -> None:
    _pre_set_operation(b, x, y, False)


def _pre_sub(b: _Budget, x: Any, y: Any) -> None:
    _pre_set_operation(b, x, y, False)


def _pre_mult(b: _Budget, x: Any, y: Any) -> None:
    tx, ty = type(x), type(y)
    if tx in _INTS and ty in _INTS:
        bits = x.bit_length() + y.bit_length()
        if bits > MAX_INT_BITS + 1:
            _too_many_bits(b, bits)
        _spend(b, _int_product_units(x, y))
        return
    if tx in _SEQUENCES and ty in _INTS:
        n = len(x) * y
    elif ty in _SEQUENCES and tx in _INTS:
        n = len(y) * x
    else:
        _spend(b, 1)
        return
    if n > MAX_ITEMS:
        _too_big(b, n)
    _spend(b, 1 + max(n, 0))


def _pre_division(b: _Budget, x: Any, y: Any) -> None:
    """``//`` and ``%`` of whole numbers: long division."""
    _spend(b, _int_product_units(x, y) if isinstance(x, int) and isinstance(y, int) else 1)


def _pre_mod(b: _Budget, x: Any, y: Any) -> None:
    if type(x) in _STRINGS:
        _fail(b, "old-style '%' formatting of text is not allowed in models (its size "
                 "cannot be bounded; use an f-string)")
    _pre_division(b, x, y)


def _pre_truediv(b: _Budget, x: Any, y: Any) -> None:
    _spend(b, _int_units(x, y) if isinstance(x, int) and isinstance(y, int) else 1)


def _pre_pow(b: _Budget, x: Any, y: Any) -> None:
    if isinstance(x, int) and isinstance(y, int) and y > 0:
        bits = x.bit_length()
        if bits > 1:
            # |x| ** y has more than (bits - 1) * y bits.
            if (bits - 1) * y > MAX_INT_BITS:
                _too_many_bits(b, (bits - 1) * y)
            _spend(b, 1 + ((bits * y) >> 6) ** 2)
        else:  # 0, 1 or -1: as many (tiny) multiplications as y has bits
            _spend(b, 1 + y.bit_length())
    else:
        _spend(b, 1)


def _pre_lshift(b: _Budget, x: Any, y: Any) -> None:
    if isinstance(x, int) and isinstance(y, int) and x and y > 0:
        bits = x.bit_length() + y
        if bits > MAX_INT_BITS:
            _too_many_bits(b, bits)
        _spend(b, 1 + (bits >> 6))
    else:
        _spend(b, 1)


def _pre_rshift(b: _Budget, x: Any, y: Any) -> None:
    _spend(b, 1 + (x.bit_length() >> 8) if isinstance(x, int) else 1)


def _pre_matmult(b: _Budget, x: Any, y: Any) -> None:
    _spend(b, 1)


def _plain(check: Callable[[_Budget, Any, Any], None],
           compute: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    def guard(b: _Budget, x: Any, y: Any) -> Any:
        check(b, x, y)
        return _check_int(b, compute(x, y))
    return guard


#: Per operator: its check, ``x op y`` and ``x op= y``.
_OPERATIONS: dict[type[ast.operator], tuple[Callable[..., None], Callable[..., Any],
                                              Callable[..., Any]]] = {
    ast.Add: (_pre_add, operator.add, operator.iadd),
    ast.Sub: (_pre_sub, operator.sub, operator.isub),
    ast.Mult: (_pre_mult, operator.mul, operator.imul),
    ast.Div: (_pre_truediv, operator.truediv, operator.itruediv),
    ast.FloorDiv: (_pre_division, operator.floordiv, operator.ifloordiv),
    ast.Mod: (_pre_mod, operator.mod, operator.imod),
    ast.Pow: (_pre_pow, operator.pow, operator.ipow),
    ast.LShift: (_pre_lshift, operator.lshift, operator.ilshift),
    ast.RShift: (_pre_rshift, operator.rshift, operator.irshift),
    ast.BitOr: (_pre_or, operator.or_, operator.ior),
    ast.BitAnd: (_pre_and, operator.and_, operator.iand),
    ast.BitXor: (_pre_xor, operator.xor, operator.ixor),
    ast.MatMult: (_pre_matmult, operator.matmul, operator.imatmul),
}
_BINOPS: dict[type[ast.operator], Callable[..., Any]] = {
    op: _plain(check, compute) for op, (check, compute, _) in _OPERATIONS.items()}
_BINOPS.update({ast.Add: _add, ast.Sub: _sub, ast.Mult: _mult})  # the usual ones, quicker
_IN_PLACE: dict[type[ast.operator], Callable[..., Any]] = {
    op: _plain(check, compute) for op, (check, _, compute) in _OPERATIONS.items()}
_IN_PLACE[ast.Add] = _iadd


# --------------------------------------------------------------------------- comparisons

def _comparison(compare: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    """``==``, ``!=``, ``<``, ...: Python compares containers item by item, at most as
    far as the shorter goes, and texts and numbers by their length."""
    def guard(b: _Budget, x: Any, y: Any) -> Any:
        tx, ty = type(x), type(y)
        if tx in _WALKED and ty in _WALKED:
            units = _walk(b, x if len(x) <= len(y) else y)
        elif tx is ty and (tx is str or tx is bytes):
            units = 1 + (min(len(x), len(y)) >> 4)
        elif tx is int and ty is int:
            units = 1 + (min(x.bit_length(), y.bit_length()) >> 6)
        else:
            units = 1
        b.steps -= 1
        b.work -= units
        if b.steps < 0 or b.work < 0:
            _over(b)
        return compare(x, y)
    return guard


_DICT_VALUES: type = type({}.values())


def _contains(b: _Budget, needle: Any, haystack: Any) -> bool:
    """``needle in haystack``: a search of a text, a hash for a dict or set, a comparison
    with each item of a list."""
    t = type(haystack)
    if t is list or t is tuple or t is _DICT_VALUES:
        units = 1 + len(haystack) * _eq_units(b, needle)
    elif t is str or t is bytes:
        units = 1 + len(haystack) + (len(needle) if type(needle) is t else 0)
    elif t in _HASHED:
        units = _key_units(b, needle)
    elif t is range:
        units = 1 if type(needle) in _INTS else 1 + len(haystack) * _eq_units(b, needle)
    else:
        _spend(b, 1)
        each = _eq_units(b, needle)
        return needle in _bounded(b, haystack, MAX_WORK, lambda _b, _item: each)
    b.steps -= 1
    b.work -= units
    if b.steps < 0 or b.work < 0:
        _over(b)
    return needle in haystack


def _not_contains(b: _Budget, needle: Any, haystack: Any) -> bool:
    return not _contains(b, needle, haystack)


_COMPARE_OPS: dict[type[ast.cmpop], Callable[..., Any]] = {
    ast.Eq: _comparison(operator.eq), ast.NotEq: _comparison(operator.ne),
    ast.Lt: _comparison(operator.lt), ast.LtE: _comparison(operator.le),
    ast.Gt: _comparison(operator.gt), ast.GtE: _comparison(operator.ge),
    ast.In: _contains, ast.NotIn: _not_contains,
    ast.Is: lambda _b, x, y: x is y, ast.IsNot: lambda _b, x, y: x is not y,
}
_COMPARE_NAMES = {op: i for i, op in enumerate(_COMPARE_OPS)}
_COMPARE_BY_INDEX = list(_COMPARE_OPS.values())


def _chain(b: _Budget, ops: tuple[int, ...], left: Any, *rights: Callable[[], Any]) -> Any:
    """A chained comparison ``a < b < c``: operands evaluated lazily, once each."""
    result: Any = True
    for op, right in zip(ops, rights, strict=False):
        value = right()
        result = _COMPARE_BY_INDEX[op](b, left, value)
        if not result:
            return result
        left = value
    return result


# --------------------------------------------------------------------------- subscripts

def _item(b: _Budget, obj: Any, key: Any) -> Any:
    t = type(key)
    b.steps -= 1
    if t is tuple:
        b.work -= _walk(b, key)
    elif t is str:
        b.work -= 1 + (len(key) >> 6)
    if b.steps < 0 or b.work < 0:
        _over(b)
    return obj[key]


def _slice(b: _Budget, obj: Any, lower: Any, upper: Any, step: Any) -> Any:
    return _get_slice(b, obj, slice(lower, upper, step))


def _get_slice(b: _Budget, obj: Any, key: slice) -> Any:
    if type(obj) in _SEQUENCES:
        _spend(b, 1 + len(range(*key.indices(len(obj)))))
    else:
        _spend(b, 1)
    return obj[key]


class _Target:
    """``obj`` as the target of a subscript assignment ``obj[key] = value`` (or ``+=``):
    sizes a slice assignment and hashes a key before Python does."""

    __slots__ = ("_budget", "_obj")

    def __init__(self, budget: _Budget, obj: Any) -> None:
        self._budget = budget
        self._obj = obj

    def __getitem__(self, key: Any) -> _InPlace:
        b = self._budget
        value = _get_slice(b, self._obj, key) if type(key) is slice \
            else _item(b, self._obj, key)
        return _InPlace(b, value)

    def __setitem__(self, key: Any, value: Any) -> None:
        b, obj = self._budget, self._obj
        if type(key) is slice:
            if type(obj) is list:
                value = _materialize(b, value)
                n = len(obj) - len(range(*key.indices(len(obj)))) + len(value)
                if n > MAX_ITEMS:
                    _too_big(b, n)
                _spend(b, 1 + len(obj) + len(value))
            else:
                _spend(b, 1)
        else:
            _spend(b, _key_units(b, key))
            if type(obj) is dict and key not in obj and len(obj) >= MAX_ITEMS:
                _too_big(b, len(obj) + 1, "items")
        obj[key] = value


def _target(b: _Budget, obj: Any) -> _Target:
    return _Target(b, obj)


class _InPlace:
    """The current value of ``obj[key]`` in ``obj[key] += value``: the in-place operator
    is guarded, and hands back the plain result that Python then stores."""

    __slots__ = ("_budget", "_value")

    def __init__(self, budget: _Budget, value: Any) -> None:
        self._budget = budget
        self._value = value


def _in_place_method(guard: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: _InPlace, other: Any) -> Any:
        return guard(self._budget, self._value, other)
    return method


_IN_PLACE_DUNDERS = {
    ast.Add: "__iadd__", ast.Sub: "__isub__", ast.Mult: "__imul__", ast.Div: "__itruediv__",
    ast.FloorDiv: "__ifloordiv__", ast.Mod: "__imod__", ast.Pow: "__ipow__",
    ast.LShift: "__ilshift__", ast.RShift: "__irshift__", ast.BitOr: "__ior__",
    ast.BitAnd: "__iand__", ast.BitXor: "__ixor__", ast.MatMult: "__imatmul__",
}
for _op, _dunder in _IN_PLACE_DUNDERS.items():
    setattr(_InPlace, _dunder, _in_place_method(_IN_PLACE[_op]))


# --------------------------------------------------------------------------- f-strings

_SPEC_NUMBER = re.compile(r"\d+")


def _format(b: _Budget, value: Any, conversion: int, spec: str) -> str:
    """One ``{value!conversion:spec}`` of an f-string."""
    size = _text_units(b, value)
    if size > MAX_ITEMS:
        _too_big(b, size, "characters")
    if spec:
        numbers = _SPEC_NUMBER.findall(spec)
        if any(len(n) > 9 for n in numbers):
            _fail(b, f"a format width or precision of 10**9 or more (at most {MAX_ITEMS:,})")
        number = max(map(int, numbers), default=0)
        if number > MAX_ITEMS:
            _fail(b, f"a format width or precision of {number:,} (at most {MAX_ITEMS:,})")
        _spend(b, 1 + number + len(spec))
    if conversion == 115:
        value = str(value)
    elif conversion == 114:
        value = repr(value)
    elif conversion == 97:
        value = ascii(value)
    text = format(value, spec)
    if len(text) > MAX_ITEMS:
        _too_big(b, len(text), "characters")
    return text


def _fstring(b: _Budget, parts: tuple[str, ...]) -> str:
    n = sum(map(len, parts))
    if n > MAX_ITEMS:
        _too_big(b, n, "characters")
    _spend(b, 1 + n)
    return "".join(parts)


# --------------------------------------------------------------------------- calls

def _call(b: _Budget, func: Any, /, *args: Any, **kwargs: Any) -> Any:
    """A call of a name: a safe builtin (guarded), or whatever the name holds."""
    guard = _BUILTIN_GUARDS.get(id(func))
    if guard is not None:
        return guard(b, *args, **kwargs)
    t = type(func)
    if t is BuiltinFunctionType:
        owner = func.__self__
        if type(owner) is not ModuleType and not isinstance(owner, type):
            method = _METHOD_GUARDS.get(func.__name__)
            if method is not None:
                return method(b, owner, *args, **kwargs)
    elif t is MethodDescriptorType:
        method = _METHOD_GUARDS.get(func.__name__)
        if method is not None and args and isinstance(args[0], func.__objclass__):
            return method(b, *args, **kwargs)
    _spend(b, 1)
    return func(*args, **kwargs)


def _wrap_key(b: _Budget, kwargs: dict[str, Any]) -> None:
    key = kwargs.get("key")
    if key is not None:
        kwargs["key"] = lambda item: _call(b, key, item)


def _b_abs(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    x = args[0] if args else None
    _spend(b, 1 + (x.bit_length() >> 6 if type(x) is int else 0))
    return abs(*args, **kwargs)


def _b_all(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    return all(*_counted_iterable(b, args), **kwargs)


def _b_any(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    return any(*_counted_iterable(b, args), **kwargs)


def _counted_iterable(b: _Budget, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The arguments of a builtin that runs through its first argument, whose items are
    counted (a size up front, or one step each)."""
    if len(args) != 1:
        _spend(b, 1)
        return args
    iterable = args[0]
    if type(iterable) in _SIZED:
        _spend(b, 1 + len(iterable))
        return args
    _spend(b, 1)
    return (_bounded(b, iterable, MAX_WORK),)


def _b_dict(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    n = len(kwargs)
    if len(args) == 1:
        source = args[0]
        if type(source) is dict:
            _spend(b, 1 + len(source) * _CREATE_ITEM)
        else:
            source = _materialize(b, source)
            if type(source) in _WALKED:
                _walk(b, source)
            _spend(b, 1 + len(source) * _HASH_ITEM)
        n += len(source)
        args = (source,)
    else:
        _spend(b, 1)
    if n > MAX_ITEMS:
        _too_big(b, n, "items")
    return dict(*args, **kwargs)


def _b_float(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    x: Any = args[0] if args else None
    _spend(b, 1 + (len(x) if type(x) in _STRINGS else 0))
    return float(*args, **kwargs)


def _b_int(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    x: Any = args[0] if args else kwargs.get("x")
    if type(x) in _STRINGS:
        n = len(x)
        _spend(b, 1 + n + (min(n, 10_000) >> 4) ** 2)
    elif type(x) is float:
        _spend(b, 16)
    else:
        _spend(b, 1)
    return _check_int(b, int(*args, **kwargs))  # a binary or hex text has no digit limit


def _b_list(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    if len(args) == 1:
        return list(_sized_copy(b, args[0]))
    _spend(b, 1)
    return list(*args, **kwargs)


def _b_tuple(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    if len(args) == 1:
        return tuple(_sized_copy(b, args[0]))
    _spend(b, 1)
    return tuple(*args, **kwargs)


def _sized_copy(b: _Budget, iterable: Any) -> Any:
    if type(iterable) in _SIZED:
        _spend(b, _copy_units(b, iterable))
        return iterable
    _spend(b, 1)
    return _bounded(b, iterable, MAX_ITEMS)


def _b_set(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    if len(args) == 1:
        iterable = args[0]
        t = type(iterable)
        if t in _SIZED:
            n = len(iterable)
            if n > MAX_ITEMS:
                _too_big(b, n, "items")
            if t not in _HASHED and t in _WALKED:
                _walk(b, iterable)
            _spend(b, 1 + n * _HASH_ITEM)
            return set(iterable)
        _spend(b, 1)
        return set(_bounded(b, iterable, MAX_ITEMS, _key_units))
    _spend(b, 1)
    return set(*args, **kwargs)


def _b_max(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    return max(*_compared(b, args), **_keyed(b, kwargs))


def _b_min(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    return min(*_compared(b, args), **_keyed(b, kwargs))


def _keyed(b: _Budget, kwargs: dict[str, Any]) -> dict[str, Any]:
    _wrap_key(b, kwargs)
    return kwargs


def _compared(b: _Budget, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Arguments of min() and max(): the items they compare are walked."""
    if len(args) == 1:
        iterable = args[0]
        if type(iterable) in _WALKED:
            _spend(b, 1 + _walk(b, iterable))
        elif type(iterable) in _SIZED:
            _spend(b, 1 + len(iterable))
        else:
            _spend(b, 1)
            return (_bounded(b, iterable, MAX_WORK, _eq_units),)
        return args
    _spend(b, 1 + _walk(b, args))
    return args


def _b_range(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    result = range(*args, **kwargs)
    try:
        n = len(result)
    except OverflowError:
        _fail(b, f"a range of more than 2**63 items (at most {MAX_ITEMS:,})")
    if n > MAX_ITEMS:
        _fail(b, f"a range of {n:,} items (at most {MAX_ITEMS:,})")
    _spend(b, 1)
    return result


#: Units for round(x, n) of a float (up to ten microseconds for large floats).
_ROUND_FLOAT = 1_200


def _b_round(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    number = args[0] if args else kwargs.get("number")
    digits = args[1] if len(args) > 1 else kwargs.get("ndigits")
    if isinstance(number, int) and isinstance(digits, int) and digits < 0:
        if -digits > MAX_INT_DIGITS:
            _fail(b, f"round() to {digits:,} digits (at most {MAX_INT_DIGITS:,} for a whole "
                     f"number)")
        bits = max(number.bit_length(), (-digits * 10) // 3)
        _spend(b, 1 + (bits >> 6) ** 2)
    elif isinstance(number, float) and digits is not None:
        _spend(b, _ROUND_FLOAT)  # correctly rounded: the digits of a large float
    else:
        _spend(b, 1)
    return round(*args, **kwargs)


def _b_sorted(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    if len(args) != 1:
        _spend(b, 1)
        return sorted(*args, **kwargs)
    items = _materialize(b, args[0])
    _spend(b, _sort_units(b, items))
    _wrap_key(b, kwargs)
    return sorted(items, **kwargs)


def _sort_units(b: _Budget, items: Any) -> int:
    size = _walk(b, items) if type(items) in _WALKED else len(items)
    return 1 + size * max(1, len(items).bit_length())


def _b_str(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    value: Any
    if len(args) == 1 and not kwargs:
        value = args[0]
        if type(value) is str:
            _spend(b, 1)
            return value
        size = _text_units(b, value)
        if size > MAX_ITEMS:
            _too_big(b, size, "characters")
        text = str(value)
        if len(text) > MAX_ITEMS:
            _too_big(b, len(text), "characters")
        return text
    value = args[0] if args else kwargs.get("object")
    _spend(b, 1 + (len(value) if type(value) in _SIZED else 0))
    return str(*args, **kwargs)


def _b_sum(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    if not args:
        _spend(b, 1)
        return sum(*args, **kwargs)
    start = args[1] if len(args) > 1 else kwargs.get("start", 0)
    if type(start) not in (int, float, bool, complex) and type(start) not in _STRINGS:
        # Adding lists or tuples one by one builds ever longer values: add them as the
        # model would, each addition guarded.
        if len(args) > 2 or set(kwargs) - {"start"}:
            _spend(b, 1)
            return sum(*args, **kwargs)
        total = start
        for item in _iterate(b, args[0], 1):
            total = _add(b, total, item)
        return total
    iterable = args[0]
    if type(iterable) in _WALKED:
        _spend(b, 1 + _walk(b, iterable))
    elif type(iterable) in _SIZED:
        _spend(b, 1 + len(iterable) * _CREATE_ITEM)
    else:
        _spend(b, 1)
        iterable = _bounded(b, iterable, MAX_WORK, _eq_units)
    return _check_int(b, sum(iterable, *args[1:], **kwargs))


def _b_zip(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
    """zip() of many iterables (``zip(*rows)``) builds a long tuple per item: counted."""
    _spend(b, 1 + len(args))
    if len(args) <= _SMALL:
        return zip(*args, **kwargs)  # noqa: B905 - strict= is the model's to give
    width = len(args)
    return _bounded(b, zip(*args, **kwargs), MAX_WORK,  # noqa: B905 - as above
                    lambda _b, _item: width)


def _b_passthrough(function: Callable[..., Any]) -> Callable[..., Any]:
    """A builtin that costs little by itself (lazy iterators, bool): a step."""
    def guard(b: _Budget, /, *args: Any, **kwargs: Any) -> Any:
        _spend(b, 1)
        return function(*args, **kwargs)
    return guard


_BUILTIN_GUARDS: dict[int, Callable[..., Any]] = {id(function): guard for function, guard in [
    (abs, _b_abs), (all, _b_all), (any, _b_any), (bool, _b_passthrough(bool)),
    (dict, _b_dict), (enumerate, _b_passthrough(enumerate)), (float, _b_float), (int, _b_int),
    (len, _b_passthrough(len)), (list, _b_list), (max, _b_max), (min, _b_min),
    (range, _b_range), (reversed, _b_passthrough(reversed)), (round, _b_round), (set, _b_set),
    (sorted, _b_sorted), (str, _b_str), (sum, _b_sum), (tuple, _b_tuple),
    (zip, _b_zip),
]}


# --------------------------------------------------------------------------- methods
# One guard per safe method name, called as guard(budget, receiver, *args, **kwargs).
# Each prices the call by the receiver's type (str, list, dict, ...), refuses what would
# build too large a value, then calls the method itself (so errors are Python's own).

def _unbound(b: _Budget, cls: type, name: str, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
    """``str.lower(x)``, ``dict.get(d, k)``: a method called through its class."""
    return _call(b, getattr(cls, name), *args, **kwargs)


def _method_guard(name: str, units: Callable[..., int],
                  check_result: bool = False) -> Callable[..., Any]:
    def guard(b: _Budget, receiver: Any, /, *args: Any, **kwargs: Any) -> Any:
        if isinstance(receiver, type):  # str.lower(x), dict.get(d, k): unbound
            return _unbound(b, receiver, name, args, kwargs)
        _spend(b, units(b, receiver, args, kwargs))
        result = getattr(receiver, name)(*args, **kwargs)
        if check_result and type(result) in _SIZED and len(result) > MAX_ITEMS:
            _too_big(b, len(result))
        return result
    guard.__name__ = f"_m_{name}"
    return guard


def _size(x: Any) -> int:
    return len(x) if type(x) in _SIZED else 1


def _u_linear(b: _Budget, receiver: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """Linear in the receiver (lower, upper, copy, reverse, partition, ...)."""
    return 1 + _size(receiver)


def _u_copy(b: _Budget, receiver: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    t = type(receiver)
    return 1 + _size(receiver) * (1 if t is list else _CREATE_ITEM)


def _u_twice(b: _Budget, receiver: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    return 1 + 2 * _size(receiver)


def _u_scan(b: _Budget, receiver: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """isdigit, isalpha, isalnum: a quick scan of the text."""
    return 1 + (_size(receiver) >> 2)


def _u_constant(b: _Budget, receiver: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> int:
    return 1


def _u_strip(b: _Budget, receiver: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    chars: Any = args[0] if args else kwargs.get("chars")
    # Each character stripped is looked up among ``chars``.
    return 1 + _size(receiver) * (1 + (len(chars) >> 6 if type(chars) in _STRINGS else 0))


def _u_split(b: _Budget, receiver: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    # Up to one new text per character: each piece is an object to allocate.
    return 1 + 4 * _size(receiver)


def _u_search(b: _Budget, receiver: Any, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> int:
    """find, index, count: in a text, a substring search; in a list, tuple or range, a
    comparison with each item."""
    needle = args[0] if args else None
    t = type(receiver)
    if t in _STRINGS:
        return 1 + len(receiver) + _size(needle)
    if t is range and type(needle) in _INTS:
        return 1
    if t in _SIZED:
        return 1 + len(receiver) * _eq_units(b, needle)
    return 1


def _u_prefix(b: _Budget, receiver: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """startswith, endswith: the prefix (or each of a tuple of them)."""
    prefix = args[0] if args else None
    if type(prefix) is tuple:
        chars = sum(map(len, _of_type([prefix], str))) + sum(map(len, _of_type([prefix], bytes)))
        return 1 + len(prefix) + (chars >> 4)
    return 1 + (_size(prefix) >> 4)


def _u_key(b: _Budget, receiver: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """get, pop: a key to hash (dict, set); for a list, pop(i) moves the items after i."""
    t = type(receiver)
    if t is list:
        return 1 + len(receiver) if args else 1
    if args and (t is dict or t is set):
        return _key_units(b, args[0])
    return 1


def _m_remove(b: _Budget, receiver: Any, /, *args: Any, **kwargs: Any) -> Any:
    if isinstance(receiver, type):
        return _unbound(b, receiver, "remove", args, kwargs)
    t = type(receiver)
    if t is list and args:
        _spend(b, 1 + len(receiver) * _eq_units(b, args[0]))
    elif t is set and args:
        _spend(b, _key_units(b, args[0]))
    else:
        _spend(b, 1)
    return receiver.remove(*args, **kwargs)


def _m_setdefault(b: _Budget, receiver: Any, /, *args: Any, **kwargs: Any) -> Any:
    if isinstance(receiver, type):
        return _unbound(b, receiver, "setdefault", args, kwargs)
    if type(receiver) is dict and args:
        _spend(b, _key_units(b, args[0]))
        if len(receiver) >= MAX_ITEMS and args[0] not in receiver:
            _too_big(b, len(receiver) + 1, "items")
    else:
        _spend(b, 1)
    return receiver.setdefault(*args, **kwargs)


def _m_append(b: _Budget, receiver: Any, /, *args: Any, **kwargs: Any) -> Any:
    if type(receiver) is list:
        b.steps -= 1
        if b.steps < 0:
            _over(b)
        if len(receiver) >= MAX_ITEMS:
            _too_big(b, len(receiver) + 1, "items")
        return receiver.append(*args, **kwargs)
    if isinstance(receiver, type):
        return _unbound(b, receiver, "append", args, kwargs)
    _spend(b, 1)
    return receiver.append(*args, **kwargs)


def _m_insert(b: _Budget, receiver: Any, /, *args: Any, **kwargs: Any) -> Any:
    if type(receiver) is list:
        if len(receiver) >= MAX_ITEMS:
            _too_big(b, len(receiver) + 1, "items")
        _spend(b, 1 + len(receiver))  # the items after the position move
        return receiver.insert(*args, **kwargs)
    if isinstance(receiver, type):
        return _unbound(b, receiver, "insert", args, kwargs)
    _spend(b, 1)
    return receiver.insert(*args, **kwargs)


def _m_extend(b: _Budget, receiver: Any, /, *args: Any, **kwargs: Any) -> Any:
    if type(receiver) is list and len(args) == 1 and not kwargs:
        items = _materialize(b, args[0], MAX_ITEMS)
        n = len(receiver) + len(items)
        if n > MAX_ITEMS:
            _too_big(b, n, "items")
        _spend(b, 1 + len(items))
        return receiver.extend(items)
    if isinstance(receiver, type):
        return _unbound(b, receiver, "extend", args, kwargs)
    _spend(b, 1)
    return receiver.extend(*args, **kwargs)


def _m_update(b: _Budget, receiver: Any, /, *args: Any, **kwargs: Any) -> Any:
    if isinstance(receiver, type):
        return _unbound(b, receiver, "update", args, kwargs)
    t = type(receiver)
    if t is not dict and t is not set:
        _spend(b, 1)
        return receiver.update(*args, **kwargs)
    n = len(receiver) + len(kwargs)
    units = 1 + len(kwargs)
    sources = []
    for source in args:
        if type(source) is not dict and type(source) is not set:
            source = _materialize(b, source)
            if type(source) in _WALKED:
                _walk(b, source)
        units += len(source) * _HASH_ITEM
        n += len(source)
        sources.append(source)
    if n > MAX_ITEMS:
        _too_big(b, n, "items")
    _spend(b, units)
    return receiver.update(*sources, **kwargs)


def _m_sort(b: _Budget, receiver: Any, /, *args: Any, **kwargs: Any) -> Any:
    if isinstance(receiver, type):
        return _unbound(b, receiver, "sort", args, kwargs)
    if type(receiver) is list:
        _spend(b, _sort_units(b, receiver))
        _wrap_key(b, kwargs)
    else:
        _spend(b, 1)
    return receiver.sort(*args, **kwargs)


def _m_join(b: _Budget, receiver: Any, /, *args: Any, **kwargs: Any) -> Any:
    if isinstance(receiver, type):
        return _unbound(b, receiver, "join", args, kwargs)
    t = type(receiver)
    if t in _STRINGS and len(args) == 1 and not kwargs:
        items = _materialize(b, args[0])
        if type(items) is not list and type(items) is not tuple:
            items = list(items)
        n = len(receiver) * max(len(items) - 1, 0) + sum(map(len, _of_type([items], t)))
        if n > MAX_ITEMS:
            _too_big(b, n, "characters")
        _spend(b, 1 + n + len(items) * _CREATE_ITEM)
        return receiver.join(items)
    _spend(b, 1)
    return receiver.join(*args, **kwargs)


def _m_replace(b: _Budget, receiver: Any, /, *args: Any, **kwargs: Any) -> Any:
    if isinstance(receiver, type):
        return _unbound(b, receiver, "replace", args, kwargs)
    t = type(receiver)
    if t in _STRINGS and len(args) >= 2 and type(args[0]) is t and type(args[1]) is t:
        old, new = args[0], args[1]
        _spend(b, 1 + len(receiver))
        found = receiver.count(old)
        limit = args[2] if len(args) > 2 else kwargs.get("count", -1)
        if type(limit) in _INTS and 0 <= limit < found:
            found = limit
        n = len(receiver) + found * (len(new) - len(old))
        if n > MAX_ITEMS:
            _too_big(b, n, "characters")
        _spend(b, 1 + n)
    else:
        _spend(b, 1 + _size(receiver))
    return receiver.replace(*args, **kwargs)


def _m_zfill(b: _Budget, receiver: Any, /, *args: Any, **kwargs: Any) -> Any:
    if isinstance(receiver, type):
        return _unbound(b, receiver, "zfill", args, kwargs)
    width: Any = args[0] if args else None
    if type(width) in _INTS and width > MAX_ITEMS:
        _too_big(b, width, "characters")
    _spend(b, 1 + _size(receiver) + (width if type(width) in _INTS and width > 0 else 0))
    return receiver.zfill(*args, **kwargs)


_METHOD_GUARDS: dict[str, Callable[..., Any]] = {
    "get": _method_guard("get", _u_key),
    "keys": _method_guard("keys", _u_constant),
    "values": _method_guard("values", _u_constant),
    "items": _method_guard("items", _u_constant),
    "setdefault": _m_setdefault,
    "update": _m_update,
    "copy": _method_guard("copy", _u_copy),
    "append": _m_append,
    "extend": _m_extend,
    "index": _method_guard("index", _u_search),
    "count": _method_guard("count", _u_search),
    "insert": _m_insert,
    "remove": _m_remove,
    "pop": _method_guard("pop", _u_key),
    "sort": _m_sort,
    "reverse": _method_guard("reverse", _u_linear),
    "lower": _method_guard("lower", _u_twice, True),
    "upper": _method_guard("upper", _u_twice, True),
    "strip": _method_guard("strip", _u_strip),
    "lstrip": _method_guard("lstrip", _u_strip),
    "rstrip": _method_guard("rstrip", _u_strip),
    "split": _method_guard("split", _u_split, True),
    "rsplit": _method_guard("rsplit", _u_split, True),
    "join": _m_join,
    "replace": _m_replace,
    "startswith": _method_guard("startswith", _u_prefix),
    "endswith": _method_guard("endswith", _u_prefix),
    "find": _method_guard("find", _u_search),
    "isdigit": _method_guard("isdigit", _u_scan),
    "isalpha": _method_guard("isalpha", _u_scan),
    "isalnum": _method_guard("isalnum", _u_scan),
    "title": _method_guard("title", _u_twice, True),
    "capitalize": _method_guard("capitalize", _u_twice, True),
    "casefold": _method_guard("casefold", _u_twice, True),
    "zfill": _m_zfill,
    "splitlines": _method_guard("splitlines", _u_split, True),
    "partition": _method_guard("partition", _u_linear),
}
assert set(_METHOD_GUARDS) == SAFE_METHODS


# =========================================================================== the rewrite

_OPERATOR_NAMES = {op: op.__name__.lower() for op in _BINOPS}
_COMPARE_GUARD_NAMES = {op: f"cmp_{op.__name__.lower()}" for op in _COMPARE_OPS}

#: The guards, by the names the rewritten code calls them by: as methods of the
#: evaluation's budget, ``__onestop_budget__.add(x, y)``. The budget is the one name the
#: rewrite adds to the scope (set after the data, so no variable can stand in for it) and
#: model code cannot name it (names starting with ``_`` are refused).
_GUARDS: dict[str, Callable[..., Any]] = {
    **{_OPERATOR_NAMES[op]: f for op, f in _BINOPS.items()},
    **{"i" + _OPERATOR_NAMES[op]: f for op, f in _IN_PLACE.items()},
    **{_COMPARE_GUARD_NAMES[op]: f for op, f in _COMPARE_OPS.items()},
    **{f"m_{name}": f for name, f in _METHOD_GUARDS.items()},
    "chain": _chain, "call": _call, "iter": _iterate, "iter_unpacking": _iterate_unpacking,
    "star": _star, "star_keys": _star_keys, "unpack": _unpack, "sized": _sized, "key": _key,
    "item": _item, "slice": _slice, "target": _target, "format": _format,
    "fstring": _fstring,
}
for _name, _function in _GUARDS.items():
    setattr(_Budget, _name, _function)

_SCALAR_CONSTANTS = (int, float, complex, str, bytes, bool, type(None))


class _Rewriter(ast.NodeTransformer):
    """Routes what may be expensive through the guards (see the module's docstring)."""

    def __init__(self, tree: ast.AST) -> None:
        #: Names the code assigns (a name assigned may no longer be the builtin).
        self.stored = {node.id for node in ast.walk(tree)
                       if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
        self.guarded = False

    def _guard(self, kind: str, *args: ast.expr, keywords: list[ast.keyword] | None = None,
               at: ast.AST | None = None) -> ast.Call:
        self.guarded = True
        call = ast.Call(func=ast.Attribute(value=ast.Name(id=_BUDGET, ctx=ast.Load()),
                                           attr=kind, ctx=ast.Load()),
                        args=list(args), keywords=keywords or [])
        return ast.copy_location(call, at) if at is not None else call

    # -- what is cheap ---------------------------------------------------------------

    @staticmethod
    def _constant(node: ast.expr) -> bool:
        """A literal scalar (its size is the source's), or a display of them."""
        if isinstance(node, ast.Constant):
            return isinstance(node.value, _SCALAR_CONSTANTS)
        if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
            return isinstance(node.operand.value, (int, float, complex))
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return all(_Rewriter._constant(e) for e in node.elts)
        return False

    def _small_number(self, node: ast.expr) -> bool:
        """``len(...)`` or ``bool(...)`` of the builtins: a small number."""
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("len", "bool") and node.func.id not in self.stored)

    def _cheap_comparison(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> bool:
        if isinstance(op, (ast.Is, ast.IsNot)):
            return True
        if isinstance(op, (ast.In, ast.NotIn)):
            return self._constant(right)
        return (self._constant(left) or self._constant(right)
                or self._small_number(left) or self._small_number(right))

    # -- operators -------------------------------------------------------------------

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant) \
                and isinstance(node.left.value, (int, float, str)) \
                and isinstance(node.right.value, (int, float, str)) \
                and not isinstance(node.op, (ast.Pow, ast.LShift, ast.Mult, ast.Mod)):
            return node
        return self._guard(_OPERATOR_NAMES[type(node.op)], node.left, node.right, at=node)

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        operands = [node.left, *node.comparators]
        if all(self._cheap_comparison(left, op, right)
               for left, op, right in zip(operands, node.ops, operands[1:], strict=False)):
            return node
        if len(node.ops) == 1:
            return self._guard(_COMPARE_GUARD_NAMES[type(node.ops[0])], node.left,
                               node.comparators[0], at=node)
        ops = ast.Tuple(elts=[ast.Constant(value=_COMPARE_NAMES[type(op)]) for op in node.ops],
                        ctx=ast.Load())
        lazy = [ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], vararg=None,
                                              kwonlyargs=[], kw_defaults=[], kwarg=None,
                                              defaults=[]), body=operand)
                for operand in node.comparators]
        return self._guard("chain", ops, node.left, *lazy, at=node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt:
        node.value = self.visit(node.value)
        target = node.target
        kind = "i" + _OPERATOR_NAMES[type(node.op)]
        if isinstance(target, ast.Name):
            value = self._guard(kind, ast.Name(id=target.id, ctx=ast.Load()), node.value,
                                at=node)
            return ast.copy_location(ast.Assign(targets=[target], value=value), node)
        if isinstance(target, ast.Subscript):
            target.value = self._guard("target", self.visit(target.value), at=target)
            target.slice = self.visit(target.slice)
            return node
        node.target = self.visit(target)
        return node

    # -- assignments and loops ---------------------------------------------------------

    @staticmethod
    def _unpacks(target: ast.expr) -> bool:
        return any(isinstance(n, ast.Starred) for n in ast.walk(target))

    @staticmethod
    def _weight(nodes: Iterable[ast.AST]) -> int:
        """Steps one iteration counts: one per ten syntax nodes of what it runs."""
        return 1 + sum(1 for node in nodes for _ in ast.walk(node)) // 10

    def visit_Assign(self, node: ast.Assign) -> ast.stmt:
        self.generic_visit(node)
        if any(self._unpacks(t) for t in node.targets):
            node.value = self._guard("unpack", node.value, at=node.value)
        return node

    def visit_For(self, node: ast.For) -> ast.stmt:
        weight = self._weight(node.body)
        self.generic_visit(node)
        kind = "iter_unpacking" if self._unpacks(node.target) else "iter"
        node.iter = self._guard(kind, node.iter, ast.Constant(value=weight), at=node.iter)
        return node

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp
                       | ast.DictComp, body: list[ast.expr]) -> None:
        weight = self._weight([*body, *(c for g in node.generators for c in g.ifs)])
        self.generic_visit(node)
        for generator in node.generators:
            kind = "iter_unpacking" if self._unpacks(generator.target) else "iter"
            generator.iter = self._guard(kind, generator.iter, ast.Constant(value=weight),
                                         at=generator.iter)

    def visit_ListComp(self, node: ast.ListComp) -> ast.expr:
        self._comprehension(node, [node.elt])
        return node

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> ast.expr:
        self._comprehension(node, [node.elt])
        return node

    def visit_SetComp(self, node: ast.SetComp) -> ast.expr:
        self._comprehension(node, [node.elt])
        node.elt = self._guard("key", node.elt, at=node.elt)
        return node

    def visit_DictComp(self, node: ast.DictComp) -> ast.expr:
        self._comprehension(node, [node.key, node.value])
        node.key = self._guard("key", node.key, at=node.key)
        return node

    # -- calls, subscripts, displays, f-strings ------------------------------------------

    def _arguments(self, node: ast.Call) -> tuple[list[ast.expr], list[ast.keyword], bool]:
        starred = False
        args: list[ast.expr] = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                starred = True
                arg.value = self._guard("star", arg.value, at=arg)
            args.append(arg)
        for keyword in node.keywords:
            if keyword.arg is None:
                starred = True
                keyword.value = self._guard("star", keyword.value, at=keyword.value)
        return args, node.keywords, starred

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in ("len", "bool") and func.id not in self.stored \
                    and not any(isinstance(a, ast.Starred) for a in node.args) \
                    and all(k.arg is not None for k in node.keywords):
                return node
            args, keywords, _ = self._arguments(node)
            return self._guard("call", func, *args, keywords=keywords, at=node)
        if isinstance(func, ast.Attribute):
            if self._cheap_method(func.attr, node):
                return node
            args, keywords, _ = self._arguments(node)
            return self._guard(f"m_{func.attr}", func.value, *args, keywords=keywords,
                               at=node)
        return node

    def _cheap_method(self, name: str, node: ast.Call) -> bool:
        """``d.keys()``, ``d.get("k", default)``, ``s.startswith("x")``: constant time."""
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            return False
        if name in ("keys", "values", "items"):
            return not node.args
        if name == "get":
            return bool(node.args) and self._constant(node.args[0])
        if name in ("startswith", "endswith"):
            return bool(node.args) and all(self._constant(a) for a in node.args)
        return False

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load):
            if isinstance(node.slice, ast.Slice):
                if self._short_slice(node.slice):
                    return node
                parts = [p if p is not None else ast.Constant(value=None)
                         for p in (node.slice.lower, node.slice.upper, node.slice.step)]
                return self._guard("slice", node.value, *parts, at=node)
            if self._constant(node.slice):
                return node
            return self._guard("item", node.value, node.slice, at=node)
        if isinstance(node.slice, ast.Slice) or not self._constant(node.slice):
            node.value = self._guard("target", node.value, at=node.value)
        return node

    @staticmethod
    def _short_slice(part: ast.Slice) -> bool:
        """``x[:3]``, ``x[2:5]``, ``x[-3:]``: a few items, whatever ``x`` holds."""
        def number(n: ast.expr | None) -> int | None:
            if isinstance(n, ast.Constant) and type(n.value) is int:
                return n.value
            if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub) \
                    and isinstance(n.operand, ast.Constant) and type(n.operand.value) is int:
                return -n.operand.value
            return None
        if part.step is not None:
            return False
        lower, upper = number(part.lower), number(part.upper)
        if part.lower is not None and lower is None or part.upper is not None and upper is None:
            return False
        if upper is not None and upper >= 0:
            return (lower or 0) >= 0 and upper - (lower or 0) <= 1000
        if lower is not None and lower < 0:
            return upper is None and -lower <= 1000 or upper is not None and upper < 0
        return False

    def _display(self, node: ast.List | ast.Tuple | ast.Set, keys: bool) -> ast.expr:
        self.generic_visit(node)
        if not isinstance(getattr(node, "ctx", ast.Load()), ast.Load):
            return node
        starred = False
        elts = []
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                starred = True
                elt.value = self._guard("star_keys" if keys else "star", elt.value, at=elt)
            elif keys and not self._constant(elt):
                elt = self._guard("key", elt, at=elt)
            elts.append(elt)
        node.elts = elts
        return self._guard("sized", node, at=node) if starred else node

    def visit_List(self, node: ast.List) -> ast.expr:
        return self._display(node, False)

    def visit_Tuple(self, node: ast.Tuple) -> ast.expr:
        return self._display(node, False)

    def visit_Set(self, node: ast.Set) -> ast.expr:
        return self._display(node, True)

    def visit_Dict(self, node: ast.Dict) -> ast.expr:
        self.generic_visit(node)
        starred = False
        keys: list[ast.expr | None] = []
        for at, key in enumerate(node.keys):
            if key is None:
                starred = True
                node.values[at] = self._guard("star", node.values[at], at=node.values[at])
            elif not self._constant(key):
                key = self._guard("key", key, at=key)
            keys.append(key)
        node.keys = keys
        return self._guard("sized", node, at=node) if starred else node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.expr:
        if not any(isinstance(v, ast.FormattedValue) for v in node.values):
            return node
        parts: list[ast.expr] = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                spec = self.visit(value.format_spec) if value.format_spec is not None \
                    else ast.Constant(value="")
                parts.append(self._guard("format", self.visit(value.value),
                                         ast.Constant(value=value.conversion), spec,
                                         at=value))
            else:
                parts.append(value)
        return self._guard("fstring", ast.Tuple(elts=parts, ctx=ast.Load()), at=node)
