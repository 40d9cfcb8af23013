"""Call plans: the candidate calls a test will make first, read from its source.

What it is for: a pure optimisation of the proxy protocol. Most HumanEval tests begin with
straight-line ``assert candidate(<literals>) == ...`` statements. Their arguments are known
before the test runs, so the checker sends them with the code and the sandboxed child
answers them back to back, while the trusted test (still run in the checker, unchanged)
consumes the answers in order. That removes a process round trip per call, which on a
loaded machine costs milliseconds of scheduling latency each.

The plan is the longest *prefix* of the calls the test makes that is certain: calls in
straight-line statements of ``check``'s body, in evaluation order, with literal arguments,
stopping at the first statement or expression whose control flow or argument values are
not static (loops, branches, ``and``/``or``, comprehensions, non-literal arguments, the
candidate passed as a value, or the entry point named globally). So an honest test makes
exactly these calls first, in this order; if a test ever diverges, the checker discards
the remaining planned answers and continues with live calls.

What it is not for: deciding anything. Planned answers go through the same strict decoder
and the same trusted assertions as live ones.
"""

from __future__ import annotations

import ast
from typing import Any

#: Most calls planned for one test.
MAX_PLAN = 2000

_OPAQUE = (ast.BoolOp, ast.IfExp, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
           ast.GeneratorExp, ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom, ast.Dict,
           ast.Starred)


class _Stop(Exception):
    pass


def call_plan(test_src: str, entry_point: str) -> list[tuple[list[Any], dict[str, Any]]]:
    """Return ``[(args, kwargs), ...]`` of the test's certain leading candidate calls.

    Args:
        test_src: The problem's test source (defines ``check(candidate)``).
        entry_point: The function name; a test that refers to it globally gets no plan.
    """
    try:
        tree = ast.parse(test_src)
    except SyntaxError:
        return []
    if any(isinstance(n, ast.Name) and n.id == entry_point for n in ast.walk(tree)):
        return []
    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"),
                 None)
    if check is None or not check.args.args:
        return []
    name = check.args.args[0].arg
    plan: list[tuple[list[Any], dict[str, Any]]] = []

    def mentions(node: ast.AST) -> bool:
        return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))

    def visit(node: ast.AST) -> None:
        if isinstance(node, _OPAQUE):
            if mentions(node):
                raise _Stop
            return
        if isinstance(node, ast.Name) and node.id == name:
            raise _Stop  # the candidate used as a value: someone else may call it
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == name:
            try:
                args = [ast.literal_eval(a) for a in node.args]
                kwargs = {}
                for k in node.keywords:
                    if k.arg is None:
                        raise _Stop
                    kwargs[k.arg] = ast.literal_eval(k.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                raise _Stop from None
            if len(plan) >= MAX_PLAN:
                raise _Stop
            plan.append((args, kwargs))
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    try:
        for stmt in check.body:
            if isinstance(stmt, (ast.Pass, ast.Import, ast.ImportFrom)):
                continue
            if isinstance(stmt, ast.Assert):
                if stmt.msg is not None and mentions(stmt.msg):
                    raise _Stop
                visit(stmt.test)
            elif isinstance(stmt, ast.Expr):
                visit(stmt.value)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                if any(mentions(t) or any(isinstance(n, ast.Call) for n in ast.walk(t))
                       for t in targets):
                    raise _Stop
                if stmt.value is not None:
                    visit(stmt.value)
            else:
                raise _Stop
    except _Stop:
        pass
    return plan
