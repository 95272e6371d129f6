"""OMA LwM2M TLV (content format 11542), written from the Core specification.

Each TLV starts with a type byte:

    bits 7-6  identifier type: 00 Object Instance, 01 Resource Instance,
              10 Multiple Resource, 11 Resource with value
    bit 5     identifier length: 0 = 8 bits, 1 = 16 bits
    bits 4-3  length type: 00 = length in bits 2-0, 01/10/11 = 8/16/24-bit length field
    bits 2-0  the length when the length type is 00

Object Instance and Multiple Resource TLVs contain further TLVs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

OBJECT_INSTANCE = 0
RESOURCE_INSTANCE = 1
MULTIPLE_RESOURCE = 2
RESOURCE = 3

_NAMES = {
    OBJECT_INSTANCE: "object instance",
    RESOURCE_INSTANCE: "resource instance",
    MULTIPLE_RESOURCE: "multiple resource",
    RESOURCE: "resource",
}


class TlvError(ValueError):
    pass


@dataclass
class Tlv:
    kind: int
    id: int
    value: bytes = b""
    children: list["Tlv"] = field(default_factory=list)

    def __repr__(self) -> str:
        if self.kind in (OBJECT_INSTANCE, MULTIPLE_RESOURCE):
            return f"Tlv({_NAMES[self.kind]} {self.id}, {self.children!r})"
        return f"Tlv({_NAMES[self.kind]} {self.id}, {self.value!r})"


def parse(data: bytes) -> list[Tlv]:
    """Parses a TLV sequence into a tree, checking the nesting rules."""
    return _parse(bytes(data), parent=None)


def _parse(data: bytes, parent: int | None) -> list[Tlv]:
    out = []
    pos = 0
    while pos < len(data):
        type_byte = data[pos]
        pos += 1
        kind = type_byte >> 6
        id_len = 2 if type_byte & 0x20 else 1
        length_type = (type_byte >> 3) & 0x03
        if pos + id_len > len(data):
            raise TlvError("truncated identifier")
        ident = int.from_bytes(data[pos : pos + id_len], "big")
        pos += id_len
        if length_type == 0:
            length = type_byte & 0x07
        else:
            if pos + length_type > len(data):
                raise TlvError("truncated length")
            length = int.from_bytes(data[pos : pos + length_type], "big")
            pos += length_type
        if pos + length > len(data):
            raise TlvError(f"value of {length} bytes overruns the payload")
        value = data[pos : pos + length]
        pos += length

        allowed = {
            None: (OBJECT_INSTANCE, RESOURCE, MULTIPLE_RESOURCE, RESOURCE_INSTANCE),
            OBJECT_INSTANCE: (RESOURCE, MULTIPLE_RESOURCE),
            MULTIPLE_RESOURCE: (RESOURCE_INSTANCE,),
        }[parent]
        if kind not in allowed:
            where = "top level" if parent is None else _NAMES[parent]
            raise TlvError(f"{_NAMES[kind]} not allowed inside {where}")
        if kind in (OBJECT_INSTANCE, MULTIPLE_RESOURCE):
            out.append(Tlv(kind, ident, children=_parse(value, kind)))
        else:
            out.append(Tlv(kind, ident, value=value))
    return out


def _split(path: str) -> list[int]:
    return [int(p) for p in path.strip("/").split("/") if p != ""]


def _join(parts: list[int]) -> str:
    return "/" + "/".join(str(p) for p in parts)


def decode(data: bytes, request_path: str) -> dict[str, bytes]:
    """Decodes a TLV payload read from ``request_path`` into {"/o/i/r[/ri]": value bytes}.

    The request path supplies the IDs the payload leaves out: the object ID for
    Object Instance TLVs, the object and instance IDs for (Multiple) Resource TLVs,
    and the resource path for bare Resource Instance TLVs.
    """
    base = _split(request_path)
    out: dict[str, bytes] = {}

    def walk(tlvs: list[Tlv], prefix: list[int]) -> None:
        for t in tlvs:
            here = prefix + [t.id]
            if t.kind in (OBJECT_INSTANCE, MULTIPLE_RESOURCE):
                walk(t.children, here)
            else:
                key = _join(here)
                if key in out:
                    raise TlvError(f"duplicate {key}")
                out[key] = t.value

    for t in parse(data):
        depth = {OBJECT_INSTANCE: 1, RESOURCE: 2, MULTIPLE_RESOURCE: 2, RESOURCE_INSTANCE: 3}[t.kind]
        if len(base) < depth:
            raise TlvError(f"{_NAMES[t.kind]} TLV cannot answer a request on {request_path}")
        walk([t], base[:depth])
    return out


def instances(data: bytes) -> list[int]:
    """Object Instance IDs at the top level of a payload (empty instances included)."""
    return [t.id for t in parse(data) if t.kind == OBJECT_INSTANCE]


# Value decoding (the data types of the Core specification, appendix C).


def to_int(v: bytes) -> int:
    if len(v) not in (1, 2, 4, 8):
        raise TlvError(f"integer of {len(v)} bytes")
    return int.from_bytes(v, "big", signed=True)


def to_uint(v: bytes) -> int:
    if len(v) not in (1, 2, 4, 8):
        raise TlvError(f"unsigned integer of {len(v)} bytes")
    return int.from_bytes(v, "big", signed=False)


def to_float(v: bytes) -> float:
    if len(v) == 4:
        return struct.unpack(">f", v)[0]
    if len(v) == 8:
        return struct.unpack(">d", v)[0]
    raise TlvError(f"float of {len(v)} bytes")


def to_bool(v: bytes) -> bool:
    if v == b"\x00":
        return False
    if v == b"\x01":
        return True
    raise TlvError(f"boolean {v!r}")


def to_str(v: bytes) -> str:
    return v.decode("utf-8")


def to_objlnk(v: bytes) -> tuple[int, int]:
    if len(v) != 4:
        raise TlvError(f"object link of {len(v)} bytes")
    return (int.from_bytes(v[:2], "big"), int.from_bytes(v[2:], "big"))


# Encoding.


def enc_int(n: int) -> bytes:
    for size in (1, 2, 4, 8):
        try:
            return n.to_bytes(size, "big", signed=True)
        except OverflowError:
            continue
    raise ValueError(f"{n} does not fit 64 bits")


def enc_float(x: float) -> bytes:
    return struct.pack(">d", x)


def enc_bool(b: bool) -> bytes:
    return b"\x01" if b else b"\x00"


def enc_str(s: str) -> bytes:
    return s.encode("utf-8")


def enc_objlnk(obj: int, inst: int) -> bytes:
    return obj.to_bytes(2, "big") + inst.to_bytes(2, "big")


def encode_one(kind: int, ident: int, value: bytes) -> bytes:
    if not 0 <= ident <= 0xFFFF:
        raise ValueError(f"identifier {ident} out of range")
    type_byte = kind << 6
    id_bytes = ident.to_bytes(2 if ident > 0xFF else 1, "big")
    if ident > 0xFF:
        type_byte |= 0x20
    n = len(value)
    if n <= 7:
        type_byte |= n
        len_bytes = b""
    elif n <= 0xFF:
        type_byte |= 0x08
        len_bytes = n.to_bytes(1, "big")
    elif n <= 0xFFFF:
        type_byte |= 0x10
        len_bytes = n.to_bytes(2, "big")
    elif n <= 0xFFFFFF:
        type_byte |= 0x18
        len_bytes = n.to_bytes(3, "big")
    else:
        raise ValueError("value longer than 2^24-1 bytes")
    return bytes([type_byte]) + id_bytes + len_bytes + value


def resource(ident: int, value: bytes) -> bytes:
    return encode_one(RESOURCE, ident, value)


def resource_instance(ident: int, value: bytes) -> bytes:
    return encode_one(RESOURCE_INSTANCE, ident, value)


def multiple_resource(ident: int, values: dict[int, bytes]) -> bytes:
    body = b"".join(resource_instance(i, v) for i, v in values.items())
    return encode_one(MULTIPLE_RESOURCE, ident, body)


def object_instance(ident: int, children: list[bytes]) -> bytes:
    return encode_one(OBJECT_INSTANCE, ident, b"".join(children))
