"""The restricted evaluator for conditions and scripts in models.

Models are data, not programs: a condition such as ``outcome == "accept"`` or a short
script that sets a variable is all a one-stop model needs. Every expression and script is
checked against a whitelist of Python syntax before it runs (and when the model loads):
no imports, no function or class definitions, no ``while`` loops, no name or attribute
starting with ``_``, attribute access only to a short list of methods of plain data, and
builtins limited to pure functions. Nothing can reach files, the network, or the
interpreter's internals.
"""

from __future__ import annotations

import ast
import json
from typing import Any, Mapping, MutableMapping

from ..errors import ModelError, UnsafeModelError

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
    :class:`UnsafeModelError` (forbidden construct) or :class:`ModelError` (syntax error).
    """
    try:
        tree = ast.parse(source.strip() if mode == "eval" else source, mode=mode)
    except SyntaxError as exc:
        raise ModelError(f"syntax error in {'condition' if mode == 'eval' else 'script'} "
                         f"{source.strip()!r}: {exc.msg}") from None
    nodes = list(ast.walk(tree))
    # Report the most telling problem first: forbidden constructs, then reserved names,
    # then what may be called or accessed.
    for node in nodes:
        if not isinstance(node, _ALLOWED_NODES):
            why = _WHY_FORBIDDEN.get(type(node), f"{type(node).__name__} is not allowed")
            raise UnsafeModelError(f"{why} in {source.strip()!r}")
    for node in nodes:
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise UnsafeModelError(f"name {node.id!r} is not allowed (names starting "
                                   f"with '_' are reserved) in {source.strip()!r}")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise UnsafeModelError(f"attribute {node.attr!r} is not allowed (names starting "
                                   f"with '_' are reserved) in {source.strip()!r}")
    for node in nodes:
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id not in SAFE_BUILTINS:
                raise UnsafeModelError(f"calling {func.id!r} is not allowed (allowed: "
                                       f"{', '.join(sorted(SAFE_BUILTINS))}) in "
                                       f"{source.strip()!r}")
            if not isinstance(func, (ast.Name, ast.Attribute)):
                raise UnsafeModelError(f"only named functions and data methods may be "
                                       f"called in {source.strip()!r}")
    for node in nodes:
        if isinstance(node, ast.Attribute) and node.attr not in SAFE_METHODS:
            raise UnsafeModelError(f"attribute {node.attr!r} is not allowed in "
                                   f"{source.strip()!r} (allowed methods: get, keys, "
                                   f"values, items, lower, upper, strip, split, join, ...)")
    return tree


class Sandbox:
    """Compiles checked sources once and runs them against task data."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Any] = {}

    def _compiled(self, source: str, mode: str) -> Any:
        key = (source, mode)
        code = self._cache.get(key)
        if code is None:
            tree = check(source, mode)
            code = compile(tree, "<model>", mode)
            self._cache[key] = code
        return code

    def evaluate(self, expression: str, data: Mapping[str, Any]) -> Any:
        """Evaluate a condition or expression over ``data``."""
        code = self._compiled(expression, "eval")
        scope: dict[str, Any] = dict(data)
        scope["__builtins__"] = SAFE_BUILTINS
        return eval(code, scope)  # noqa: S307 - the code passed check() above

    def execute(self, script: str, data: MutableMapping[str, Any]) -> None:
        """Run a script; variables it assigns are written back into ``data``."""
        code = self._compiled(script, "exec")
        scope: dict[str, Any] = dict(data)
        scope["__builtins__"] = SAFE_BUILTINS
        exec(code, scope)  # noqa: S102 - the code passed check() above
        del scope["__builtins__"]
        for key in list(data):
            if key not in scope:
                del data[key]
        for key, value in scope.items():
            _ensure_storable(key, value)
            data[key] = value


def _ensure_storable(key: str, value: Any) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise ModelError(f"script set {key!r} to a {type(value).__name__}, which cannot be "
                         f"stored (use numbers, text, lists and dicts)") from None
