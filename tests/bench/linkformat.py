"""CoRE Link Format (RFC 6690) parser, enough for LwM2M Register and Discover payloads."""

from __future__ import annotations

from dataclasses import dataclass, field


class LinkFormatError(ValueError):
    pass


@dataclass
class Link:
    target: str
    attrs: dict[str, object] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Link({self.target!r}, {self.attrs!r})"


def parse(data: bytes | str) -> list[Link]:
    """Parses `<target>;attr=value;attr="quoted",<...>` into Links.

    An attribute without a value maps to True; quoted values lose their quotes
    (a backslash escapes the next character). Repeated attributes keep the first.
    """
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    links: list[Link] = []
    pos = 0
    n = len(text)

    def skip_ws():
        nonlocal pos
        while pos < n and text[pos] in " \t\r\n":
            pos += 1

    skip_ws()
    if pos == n:
        return links
    while True:
        skip_ws()
        if pos >= n or text[pos] != "<":
            raise LinkFormatError(f"expected '<' at offset {pos}")
        end = text.find(">", pos)
        if end < 0:
            raise LinkFormatError("unterminated link target")
        link = Link(text[pos + 1 : end])
        pos = end + 1
        while pos < n and text[pos] == ";":
            pos += 1
            start = pos
            while pos < n and text[pos] not in "=;,":
                pos += 1
            name = text[start:pos].strip()
            if not name:
                raise LinkFormatError(f"empty attribute name at offset {start}")
            value: object = True
            if pos < n and text[pos] == "=":
                pos += 1
                if pos < n and text[pos] == '"':
                    pos += 1
                    buf = []
                    while True:
                        if pos >= n:
                            raise LinkFormatError("unterminated quoted value")
                        c = text[pos]
                        if c == "\\" and pos + 1 < n:
                            buf.append(text[pos + 1])
                            pos += 2
                        elif c == '"':
                            pos += 1
                            break
                        else:
                            buf.append(c)
                            pos += 1
                    value = "".join(buf)
                else:
                    start = pos
                    while pos < n and text[pos] not in ";,":
                        pos += 1
                    value = text[start:pos].strip()
            link.attrs.setdefault(name, value)
        links.append(link)
        skip_ws()
        if pos >= n:
            return links
        if text[pos] != ",":
            raise LinkFormatError(f"expected ',' at offset {pos}")
        pos += 1


def targets(links: list[Link]) -> list[str]:
    return [link.target for link in links]


def by_target(links: list[Link]) -> dict[str, dict[str, object]]:
    return {link.target: link.attrs for link in links}
