"""Call plans: only the certain, literal, straight-line prefix of a test's calls."""

from __future__ import annotations

from codexlab.execution.plan import call_plan


def test_straight_line_literal_calls():
    src = ("def check(candidate):\n    import math\n    assert candidate(1, 2) == 3\n"
           "    assert abs(candidate(x=1.5) - 2) < 1e-6, 'msg'\n    y = candidate([1, (2,)])\n"
           "    assert candidate(-1) == 0\n")
    assert call_plan(src, "f") == [([1, 2], {}), ([], {"x": 1.5}), ([[1, (2,)]], {}), ([-1], {})]


def test_stops_at_uncertain_control_flow():
    src = ("def check(candidate):\n    assert candidate(1) == 1\n"
           "    for i in range(3):\n        assert candidate(i) == i\n    assert candidate(9) == 9\n")
    assert call_plan(src, "f") == [([1], {})]
    src = "def check(candidate):\n    assert candidate(1) or candidate(2)\n    assert candidate(3)\n"
    assert call_plan(src, "f") == []
    src = "def check(candidate):\n    x = 2\n    assert candidate(1)\n    assert candidate(x)\n"
    assert call_plan(src, "f") == [([1], {})]
    src = "def check(candidate):\n    assert candidate(1)\n    helper(candidate)\n"
    assert call_plan(src, "f") == [([1], {})]
    src = "def check(candidate):\n    assert candidate(1), candidate(2)\n"
    assert call_plan(src, "f") == []


def test_global_entry_point_disables_the_plan():
    src = "def check(candidate):\n    assert candidate(1)\n    assert f(2)\n"
    assert call_plan(src, "f") == []
    assert call_plan("not python(", "f") == []
    assert call_plan("x = 1\n", "f") == []
