"""The wire codec: exact round trips of plain data, strict rejection of everything else."""

from __future__ import annotations

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


@pytest.mark.parametrize("value", [
    object(), lambda: 1, type("I", (int,), {})(3), type("S", (str,), {})("x"),
    type("L", (list,), {})(), [1, object()], {"a": {1: object()}}, range(3), 1j,
    bytearray(b"x"),
])
def test_encoder_refuses_non_plain(value):
    with pytest.raises(codec.UnsupportedValue):
        codec.to_wire(value)


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
