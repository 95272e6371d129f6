"""LwM2M CBOR (content format 11544, LwM2M 1.2 Transport §7.4.6), decoding only: a
nested map keyed by path segments, where a key may also be an array of segments."""

from __future__ import annotations

import cbor2


def decode(data: bytes) -> dict[str, object]:
    """{"/o/i/r[/ri]": value}; time values (tag 1) come back as their integer."""
    out: dict[str, object] = {}

    def walk(prefix: tuple[int, ...], node) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                segs = tuple(key) if isinstance(key, (list, tuple)) else (key,)
                if not segs or not all(isinstance(s, int) and 0 <= s <= 65534 for s in segs):
                    raise ValueError(f"bad key {key!r} under {prefix}")
                walk(prefix + segs, child)
            return
        if len(prefix) < 3 or len(prefix) > 4:
            raise ValueError(f"value at {prefix}, not at a resource")
        path = "/" + "/".join(map(str, prefix))
        if path in out:
            raise ValueError(f"{path} given twice")
        if isinstance(node, cbor2.CBORTag) and node.tag == 1:
            node = node.value
        out[path] = node

    walk((), cbor2.loads(data))
    return out
