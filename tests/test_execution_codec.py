"""The wire codec: exact round trips of plain data, strict rejection of everything else."""

from __future__ import annotations

import array
import collections
import json
import math
import struct

import pytest

from codexlab.execution import codec


def roundtrip(v):
    return codec.from_wire(codec.decode(codec.encode(codec.to_wire(v))))


@pytest.mark.parametrize("value", [
    None, True, False, 0, -1, 2**200, -(3**500), pytest.param(10**5000, id="huge-int"), 0.1, -0.0, 1e308, 5e-324,
    "", "héllo\n\0", "\ud800", b"", b"\x00\xff", [], [1, [2, [3]]], (), (1, "a", None),
    {1, 2, 3}, frozenset({(1, 2)}), {}, {"a": 1, 2: [3], (1, 2): {"x": b"y"}, None: 1.5},
    [True, 1, 1.0], {frozenset({1}): (True,)},
])
def test_roundtrip_exact(value):
    out = roundtrip(value)
    assert out == value
    assert type(out) is type(value)
    if isinstance(value, (list, tuple)):
        assert [type(x) for x in out] == [type(x) for x in value]


def test_float_specials_and_sign():
    assert math.isnan(roundtrip(float("nan")))
    assert roundtrip(float("inf")) == float("inf")
    assert roundtrip(float("-inf")) == float("-inf")
    assert math.copysign(1, roundtrip(-0.0)) == -1
    assert type(roundtrip(True)) is bool and type(roundtrip(1)) is int


class _Mine:
    pass


class _YesCounter(collections.Counter):
    def __eq__(self, other):
        return True


_P = collections.namedtuple("_P", "x y")


class _PEq(_P):
    def __eq__(self, other):
        return True


class _PRepr(_P):
    def __repr__(self):
        return "P!"


class _It:
    def __iter__(self):
        return self

    def __next__(self):
        raise StopIteration


@pytest.mark.parametrize("value", [
    object(), lambda: 1, type("I", (int,), {})(3), type("S", (str,), {})("x"),
    type("L", (list,), {})(), [1, object()], {"a": {1: object()}}, _Mine(), _YesCounter(),
    _PEq(1, 2), _PRepr(1, 2), _It(), type("D", (dict,), {})(), ValueError("x"), int,
    {1: 2}.get, iter([object()]), (x for x in [_Mine()]),
])
def test_encoder_refuses_non_plain(value):
    with pytest.raises(codec.UnsupportedValue):
        codec.to_wire(value)


# ------------------------------------------------------------- well-known data types


def _typed_values():
    from decimal import Decimal
    from fractions import Fraction
    from typing import NamedTuple

    class Row(NamedTuple):
        a: int
        b: str = "z"

        def twice(self):
            return 2 * self.a

    class Sub(_P):
        __slots__ = ()

    return [
        1 + 2j, complex(float("inf"), -0.0), bytearray(b"\x00a"), range(1, 10, 3), range(0),
        collections.Counter("abca"), collections.Counter({"a": 0}),
        collections.OrderedDict([("b", 1), ("a", [2])]),
        collections.defaultdict(list, {1: [2]}), collections.defaultdict(None, {1: 2}),
        collections.deque([1, (2,)]), collections.deque([1], maxlen=3),
        _P(1, [2]), Row(1), Sub(3, 4), Fraction(-3, 6), Decimal("-1.10"), Decimal("NaN"),
        array.array("d", [1.5, -2.0]), array.array("q"),
        [collections.Counter("x"), {_P(1, 2): Fraction(1, 2)}],
    ]


@pytest.mark.parametrize("value", _typed_values(), ids=lambda v: type(v).__name__)
def test_well_known_types_round_trip_with_their_type(value):
    out = roundtrip(value)
    assert type(out).__name__ == type(value).__name__
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        assert out == value and out._fields == value._fields and repr(out) == repr(value)
        assert out._asdict() == value._asdict() and isinstance(out, tuple)
    elif isinstance(value, collections.deque):
        assert list(out) == list(value) and out.maxlen == value.maxlen
    elif type(value).__name__ == "Decimal" and value.is_nan():
        assert out.is_nan()
    else:
        assert out == value and type(out) is type(value)
        assert repr(out) == repr(value)


def test_defaultdict_factories():
    out = roundtrip(collections.defaultdict(int))
    out["k"] += 1
    assert out == {"k": 1}
    foreign = roundtrip(collections.defaultdict(lambda: 0, {1: 2}))
    assert foreign == {1: 2} and type(foreign) is collections.defaultdict
    with pytest.raises(TypeError, match="stays in the sandbox"):
        foreign["missing"]


def test_views_and_iterators():
    assert roundtrip({1: 2}.keys()) == {1}
    assert roundtrip({1: 2}.items()) == {(1, 2)}
    v = roundtrip({1: 2}.values())
    assert list(v) == [2] and v != [2]  # values views compare by identity, as always
    assert roundtrip(collections.OrderedDict(a=1).keys()) == {"a"}
    gen = roundtrip(x * x for x in range(3))
    assert type(gen).__name__ == "generator" and list(gen) == [0, 1, 4]
    it = roundtrip(map(str, [1, 2]))
    assert it != ["1", "2"] and tuple(it) == ("1", "2") and list(it) == []
    assert list(roundtrip(zip("ab", [1, 2], strict=True))) == [("a", 1), ("b", 2)]
    (inner,) = list(roundtrip(iter([[iter([1])]])))[0]  # iterators inside iterators
    assert list(inner) == [1]


def test_an_iterator_that_raises_raises_again_at_the_same_point(monkeypatch):
    def gen():
        yield 1
        raise KeyError("late")

    seen = []
    monkeypatch.setattr(codec, "exception_factory",
                        lambda name, text: seen.append((name, text)) or LookupError(text))
    out = roundtrip(gen())
    assert next(out) == 1
    with pytest.raises(LookupError):
        next(out)
    assert seen == [("KeyError", "'late'")]


def test_iterators_are_bounded(monkeypatch):
    import itertools

    monkeypatch.setattr(codec, "MAX_ITEMS", 100)
    assert list(roundtrip(iter(range(100)))) == list(range(100))
    with pytest.raises(codec.UnsupportedValue, match="more than 100"):
        codec.to_wire(itertools.count())


def test_numpy_values_are_real_numpy_values():
    np = pytest.importorskip("numpy")
    for v in [np.float64(0.1), np.float32(-0.0), np.int8(-7), np.uint64(2**64 - 1),
              np.bool_(False), np.complex128(1 - 1j), np.str_(""), np.str_("hé"),
              np.bytes_(b"x"), np.datetime64("2020-01-02"), np.timedelta64(3, "ms"),
              np.longdouble(1) / 3]:
        out = roundtrip(v)
        assert type(out) is type(v) and out == v and out.dtype == v.dtype
    for a in [np.arange(6).reshape(2, 3), np.array([[True], [False]]), np.array(["a", "bc"]),
              np.zeros((0, 4)), np.array(2.5), np.arange(10)[::3], np.asfortranarray(
                  np.arange(6).reshape(2, 3)), np.array([1, None, "x"], dtype=object)]:
        out = roundtrip(a)
        assert type(out) is np.ndarray and out.dtype == a.dtype and out.shape == a.shape
        assert out.tolist() == a.tolist()
        out.flat[:1] = out.flat[:1]  # writable: a copy, not a view of the message
    # Comparison semantics intact, including where they make a test fail.
    with pytest.raises(ValueError, match="ambiguous"):
        assert roundtrip(np.array([1, 2])) == [1, 2]
    assert roundtrip(np.bool_(True)) is np.True_


def test_numpy_bools_are_canonical():
    np = pytest.importorskip("numpy")
    import base64

    wire = ["na", ["|b1", [hex(2)], base64.b64encode(b"\x02\x00").decode()]]
    out = codec.from_wire(wire)
    assert out.tolist() == [True, False] and out.view(np.uint8).tolist() == [1, 0]


@pytest.mark.parametrize("node", [
    ["c", ["0x1p+0"]], ["c", [1, 2]], ["ba", "!!"], ["r", ["0x0", "0x1", "0x0"]],
    ["r", ["0x0", "0x1"]], ["C", [[["l", []], "0x1"]]], ["C", "x"],
    ["dd", ["os.system", []]], ["dd", ["eval", []]], ["dd", [["i", "0x1"], []]],
    ["dq", [None, "x"]], ["dq", ["-0x1", []]], ["dk", [["l", []]]],
    ["fr", ["0x1", "0x0"]], ["fr", ["0x1", "-0x2"]], ["fr", ["0x1"]],
    ["dec", "1.2.3"], ["dec", "__import__('os')"], ["dec", 5],
    ["arr", ["O", ""]], ["arr", ["d", "AAA="]], ["arr", ["d", "AA=="]],
    ["nt", ["P", ["x"], [None, None]]], ["nt", ["P Q", ["x"], [None]]],
    ["nt", ["import", ["x"], [None]]], ["nt", ["P", ["_x"], [None]]],
    ["nt", ["P", ["x", "x"], [None, None]]], ["nt", ["P", ["a-b"], [None]]],
    ["nt", ["P", ["x"], "x"]], ["nt", ["lambda: 0", [], []]],
    ["it", ["q", [], None]], ["it", ["g", [], ["KeyError"]]], ["it", ["g", "x", None]],
    ["odv", ["z", []]],
    ["ns", ["|O", ""]], ["ns", ["<f8", "AAAA"]], ["ns", ["f8,i4", "AAAAAAAAAAAAAAAA"]],
    ["ns", ["|V8", "AAAAAAAAAAA="]], ["ns", ["<U2", "AAAAAAAA="]],
    ["na", ["<i8", ["-0x1"], ""]], ["na", ["<i8", ["0x2"], "AAAAAAAAAAA="]],
    ["na", ["<i8", ["0x1"] * 40, "AAAAAAAAAAA="]],
    ["na", ["<i8", ["0x100000", "0x100000", "0x100000"], ""]],
    ["na", ["object", ["0x1"], ""]], ["nao", [["0x2"], [None]]],
    ["na", ["<M8[D]x", [], "AAAAAAAAAAA="]],
])
def test_decoder_rejects_malformed_well_known_types(node):
    with pytest.raises(codec.ProtocolError):
        codec.from_wire(node)


def test_decoder_builds_namedtuples_without_eval(monkeypatch):
    import builtins

    def no_eval(*a, **k):
        raise AssertionError("eval called")

    monkeypatch.setattr(builtins, "eval", no_eval)
    monkeypatch.setattr(builtins, "exec", no_eval)
    out = codec.from_wire(["nt", ["Point", ["x", "y"], [["i", "0x1"], None]]])
    assert out == (1, None) and out.x == 1 and repr(out) == "Point(x=1, y=None)"
    assert out._replace(y=2) == (1, 2) and type(out)._make([3, 4]).y == 4


@pytest.mark.parametrize("body", [
    b"", b"not json", b"\xff\xfe", b"1", b"1.5", b"NaN", b"Infinity", b'{"a": 1}',
    b'["i"]', b'["i", 5]', b'["i", "zz"]', b'["f", "nope"]', b'["y", "!!"]', b'["q", []]',
    b'["s", [["l", []]]]', b'["d", [[["l", []], null]]]', b'["d", [[1]]]', b'["l", "x"]',
    b"[" * 100000 + b"]" * 100000,
])
def test_decoder_rejects_malformed(body):
    with pytest.raises(codec.ProtocolError):
        codec.from_wire(codec.decode(body))


def test_decoder_never_builds_foreign_types():
    # A JSON object (which would be a dict from json) is rejected, not interpreted.
    with pytest.raises(codec.ProtocolError):
        codec.decode(json.dumps({"__class__": "os.system"}).encode())


def test_frame_reader_limits_and_splits():
    r = codec.FrameReader(max_frame=100)
    data = codec.frame(b"abc") + codec.frame(b"de")
    for i in range(len(data)):
        r.feed(data[i:i + 1])
    assert r.next_frame() == b"abc"
    assert r.next_frame() == b"de"
    assert r.next_frame() is None
    r.feed(struct.pack(">I", 101))
    with pytest.raises(codec.ProtocolError):
        r.next_frame()


def test_depth_limit():
    v: list = []
    for _ in range(codec.MAX_DEPTH + 5):
        v = [v]
    with pytest.raises(codec.UnsupportedValue):
        codec.to_wire(v)
