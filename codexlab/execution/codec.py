"""Wire encoding between the trusted checker and the sandboxed child.

What it is for: turning the *plain data* a HumanEval-style test exchanges with a candidate
function (``None``, ``bool``, ``int``, ``float`` including nan/inf, ``str``, ``bytes`` and
``list``/``tuple``/``dict``/``set``/``frozenset`` of these) into bytes and back, plus the
length-prefixed framing used on the sockets. The decoder is written for hostile input: it
only ever builds those builtin types, of exactly those types, never unpickles, never
evaluates, and rejects anything malformed with :class:`ProtocolError`.

What it is not for: general serialisation. Objects of any other type (subclasses of the plain
types included) are refused by the encoder with :class:`UnsupportedValue`; a candidate that
returns such an object fails its test, as the issue specifies.

Format: a JSON document in which ``null``/``true``/``false``/JSON strings stand for
``None``/``bool``/``str`` and every other value is a two-element list ``[tag, payload]``:
``["i", hex]`` int, ``["f", float.hex()]`` float, ``["y", base64]`` bytes, and
``["l"|"t"|"s"|"z", [items]]`` list/tuple/set/frozenset, ``["d", [[k, v], ...]]`` dict.
Ints travel as hex so that huge ints neither lose precision nor hit the 4,300-digit limit of
``int(str)``; floats travel as ``float.hex`` so they round-trip bit for bit.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any

#: Largest frame accepted from the child (bytes). A bigger frame is a protocol error, which
#: keeps a hostile child from making the checker allocate without bound.
MAX_FRAME = 64 * 1024 * 1024
#: Deepest nesting accepted (containers inside containers).
MAX_DEPTH = 200

_HEADER = struct.Struct(">I")


class ProtocolError(ValueError):
    """The peer sent bytes that are not a well-formed message of this protocol."""


class UnsupportedValue(TypeError):
    """A value is not plain data (or is a subclass of a plain type) and cannot be sent."""


# --------------------------------------------------------------------------- encoding


def to_wire(value: Any, _depth: int = 0) -> Any:
    """Return the JSON-ready tagged form of ``value``.

    Raises:
        UnsupportedValue: ``value`` holds an object whose exact type is not a plain type.
    """
    if _depth > MAX_DEPTH:
        raise UnsupportedValue("value nested too deeply")
    t = type(value)
    # Exact type checks on purpose: a subclass could override __eq__/__hash__/__str__.
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return ["i", hex(value)]
    if t is float:
        return ["f", value.hex()]
    if t is bytes:
        return ["y", base64.b64encode(value).decode("ascii")]
    d = _depth + 1
    if t is list:
        return ["l", [to_wire(v, d) for v in value]]
    if t is tuple:
        return ["t", [to_wire(v, d) for v in value]]
    if t is set:
        return ["s", [to_wire(v, d) for v in value]]
    if t is frozenset:
        return ["z", [to_wire(v, d) for v in value]]
    if t is dict:
        return ["d", [[to_wire(k, d), to_wire(v, d)] for k, v in value.items()]]
    raise UnsupportedValue(f"unsupported type {t.__module__}.{t.__qualname__}")


# Built once: json.dumps/json.loads with keyword arguments construct a new encoder/decoder
# on every call, which is measurable per call in a freshly forked child.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def encode(message: Any) -> bytes:
    """Encode an already-tagged message (built with :func:`to_wire`) as a frame body."""
    return _ENCODER.encode(message).encode("utf-8")


def frame(body: bytes) -> bytes:
    """Prefix ``body`` with its 4-byte big-endian length."""
    return _HEADER.pack(len(body)) + body


# --------------------------------------------------------------------------- decoding


def _reject(kind: str) -> Any:
    def hook(value: Any) -> Any:
        raise ProtocolError(f"unexpected JSON {kind}: {str(value)[:40]!r}")

    return hook


def _reject_object(pairs: Any) -> Any:
    raise ProtocolError("unexpected JSON object")


_DECODER = json.JSONDecoder(
    parse_int=_reject("number"),
    parse_float=_reject("number"),
    parse_constant=_reject("constant"),
    object_pairs_hook=_reject_object,
)


def decode(body: bytes) -> Any:
    """Parse a frame body into its JSON structure without interpreting the tags.

    JSON numbers, ``NaN``/``Infinity`` literals and objects never occur in this protocol and
    are rejected, so the only Python objects created are lists, strings, bools and ``None``.

    Raises:
        ProtocolError: the body is not valid protocol JSON.
    """
    try:
        return _DECODER.decode(body.decode("utf-8"))
    except ProtocolError:
        raise
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ProtocolError(f"malformed message: {type(exc).__name__}") from None


def from_wire(node: Any, _depth: int = 0) -> Any:
    """Rebuild a plain value from its tagged form, strictly.

    Raises:
        ProtocolError: a tag, payload or hashability rule is violated.
    """
    if node is None or node is True or node is False or type(node) is str:
        return node
    if _depth > MAX_DEPTH:
        raise ProtocolError("value nested too deeply")
    if type(node) is not list or len(node) != 2 or type(node[0]) is not str:
        raise ProtocolError("malformed value")
    tag, payload = node
    try:
        if tag == "i":
            _expect(payload, str)
            if len(payload) > 2 * MAX_FRAME:
                raise ProtocolError("int too long")
            return int(payload, 16)
        if tag == "f":
            _expect(payload, str)
            return float.fromhex(payload)
        if tag == "y":
            _expect(payload, str)
            return base64.b64decode(payload.encode("ascii"), validate=True)
        d = _depth + 1
        if tag in ("l", "t", "s", "z"):
            _expect(payload, list)
            items = [from_wire(v, d) for v in payload]
            if tag == "l":
                return items
            if tag == "t":
                return tuple(items)
            if tag == "s":
                return set(items)
            return frozenset(items)
        if tag == "d":
            _expect(payload, list)
            out: dict[Any, Any] = {}
            for pair in payload:
                if type(pair) is not list or len(pair) != 2:
                    raise ProtocolError("malformed dict item")
                out[from_wire(pair[0], d)] = from_wire(pair[1], d)
            return out
    except ProtocolError:
        raise
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeError) as exc:
        # ValueError: bad hex/base64; TypeError: unhashable set element or dict key.
        raise ProtocolError(f"bad {tag!r} payload: {type(exc).__name__}") from None
    raise ProtocolError(f"unknown tag {tag[:10]!r}")


def _expect(payload: Any, t: type) -> None:
    if type(payload) is not t:
        raise ProtocolError("payload of the wrong type")


# --------------------------------------------------------------------------- framing on fds


class FrameReader:
    """Incremental reader of length-prefixed frames from a non-blocking byte stream."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> None:
        """Append bytes read from the stream."""
        self._buf += data

    def next_frame(self) -> bytes | None:
        """Return the next complete frame body, or ``None`` if more bytes are needed.

        Raises:
            ProtocolError: the announced length exceeds the limit.
        """
        if len(self._buf) < 4:
            return None
        (n,) = _HEADER.unpack_from(self._buf)
        if n > self._max:
            raise ProtocolError(f"frame of {n} bytes exceeds the {self._max}-byte limit")
        if len(self._buf) < 4 + n:
            return None
        body = bytes(self._buf[4 : 4 + n])
        del self._buf[: 4 + n]
        return body


def send_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to a blocking fd."""
    import os

    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def recv_frame_blocking(fd: int, max_frame: int = MAX_FRAME) -> bytes | None:
    """Read one frame from a blocking fd; ``None`` on a clean EOF before a header."""
    import os

    def read_exact(n: int) -> bytes | None:
        chunks = []
        while n:
            b = os.read(fd, min(n, 1 << 20))
            if not b:
                return None
            chunks.append(b)
            n -= len(b)
        return b"".join(chunks)

    head = read_exact(4)
    if head is None:
        return None
    (n,) = _HEADER.unpack(head)
    if n > max_frame:
        raise ProtocolError("frame too large")
    body = read_exact(n)
    if body is None:
        raise ProtocolError("truncated frame")
    return body
