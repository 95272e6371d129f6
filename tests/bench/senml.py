"""SenML (RFC 8428) as LwM2M uses it: JSON (content format 110) and CBOR (112).

Names resolve as plain concatenation of the base name and the name; the base
name carries over to later records until another one appears (RFC 8428 4.6).
"""

from __future__ import annotations

import base64
import json

import cbor2

# RFC 8428 table 4 (CBOR labels). "vlo" (LwM2M object link) has no integer label
# and travels as a text key in both formats.
CBOR_LABELS = {
    -2: "bn",
    -3: "bt",
    -4: "bu",
    -5: "bv",
    -6: "bs",
    -1: "bver",
    0: "n",
    1: "u",
    2: "v",
    3: "vs",
    4: "vb",
    5: "s",
    6: "t",
    7: "ut",
    8: "vd",
}
CBOR_KEYS = {v: k for k, v in CBOR_LABELS.items()}

VALUE_FIELDS = ("v", "vs", "vb", "vd", "vlo")


class SenmlError(ValueError):
    pass


def _b64url_decode(s: str) -> bytes:
    if not isinstance(s, str):
        raise SenmlError("vd must be a string in SenML JSON")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def resolve(records: list[dict], *, allow_no_value: bool = False) -> dict[str, object]:
    """Turns normalized records (text labels) into {full name: value}.

    Opaque values come out as bytes, strings as str, booleans as bool, numbers as
    int/float, object links ("vlo") as "obj:inst" strings. A record without a value
    maps to None when ``allow_no_value`` (as in a Read-Composite request).
    """
    if not isinstance(records, list):
        raise SenmlError("SenML pack must be an array")
    out: dict[str, object] = {}
    base_name = ""
    base_value = None
    for rec in records:
        if not isinstance(rec, dict):
            raise SenmlError(f"record is not a map: {rec!r}")
        if "bn" in rec:
            if not isinstance(rec["bn"], str):
                raise SenmlError("bn must be a string")
            base_name = rec["bn"]
        if "bv" in rec:
            base_value = rec["bv"]
        name = rec.get("n", "")
        if not isinstance(name, str):
            raise SenmlError("n must be a string")
        full = base_name + name
        if not full:
            raise SenmlError("record without a name")
        present = [f for f in VALUE_FIELDS if f in rec]
        if len(present) > 1:
            raise SenmlError(f"{full}: several values {present}")
        if not present:
            if base_value is not None:
                value = base_value
            elif allow_no_value:
                value = None
            else:
                raise SenmlError(f"{full}: record without a value")
        else:
            label = present[0]
            value = rec[label]
            if label == "v":
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise SenmlError(f"{full}: v must be a number")
                if base_value is not None:
                    value = base_value + value
            elif label == "vs" and not isinstance(value, str):
                raise SenmlError(f"{full}: vs must be a string")
            elif label == "vb" and not isinstance(value, bool):
                raise SenmlError(f"{full}: vb must be a boolean")
            elif label == "vlo" and not isinstance(value, str):
                raise SenmlError(f"{full}: vlo must be a string")
        if full in out:
            raise SenmlError(f"duplicate name {full}")
        out[full] = value
    return out


def decode_json(data: bytes, **kw) -> dict[str, object]:
    try:
        records = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SenmlError(f"not JSON: {e}") from None
    if not isinstance(records, list):
        raise SenmlError("SenML pack must be an array")
    for rec in records:
        if isinstance(rec, dict) and "vd" in rec:
            rec["vd"] = _b64url_decode(rec["vd"])
    return resolve(records, **kw)


def decode_cbor(data: bytes, **kw) -> dict[str, object]:
    try:
        raw = cbor2.loads(bytes(data))
    except Exception as e:  # cbor2 raises several types on malformed input
        raise SenmlError(f"not CBOR: {e}") from None
    if not isinstance(raw, list):
        raise SenmlError("SenML pack must be an array")
    records = []
    for rec in raw:
        if not isinstance(rec, dict):
            raise SenmlError(f"record is not a map: {rec!r}")
        norm = {}
        for k, v in rec.items():
            if isinstance(k, int):
                if k not in CBOR_LABELS:
                    raise SenmlError(f"unknown CBOR label {k}")
                norm[CBOR_LABELS[k]] = v
            elif isinstance(k, str):
                norm[k] = v
            else:
                raise SenmlError(f"bad label {k!r}")
        if "vd" in norm and not isinstance(norm["vd"], bytes):
            raise SenmlError("vd must be a byte string in SenML CBOR")
        records.append(norm)
    return resolve(records, **kw)


def encode_json(records: list[dict]) -> bytes:
    out = []
    for rec in records:
        rec = dict(rec)
        if isinstance(rec.get("vd"), (bytes, bytearray)):
            rec["vd"] = base64.urlsafe_b64encode(rec["vd"]).decode().rstrip("=")
        out.append(rec)
    return json.dumps(out, separators=(",", ":")).encode()


def encode_cbor(records: list[dict]) -> bytes:
    return cbor2.dumps([{CBOR_KEYS.get(k, k): v for k, v in rec.items()} for rec in records])
