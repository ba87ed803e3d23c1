"""A reader of Meilisearch's quoted filter values, written from its filter grammar, to check what we send."""

from __future__ import annotations


def read_quoted(text: str) -> tuple[str, str]:
    """Read a double-quoted filter value as Meilisearch's filter parser (1.4+) does; return (value, rest).

    Written from the grammar: the value runs to the first double quote not preceded by a backslash
    (a backslash always takes the next character with it); then `\\"` becomes `"`, and the remaining
    escapes are read as Rust string escapes. Raises ValueError where Meilisearch would refuse it.
    """
    if not text.startswith('"'):
        raise ValueError("not a quoted value")
    index = 1
    while True:
        if index >= len(text):
            raise ValueError("missing closing delimiter")
        char = text[index]
        if char == '"':
            break
        if char == "\\":
            if index + 1 >= len(text):
                raise ValueError("malformed value: a backslash at the end")
            index += 1
        index += 1
    raw, rest = text[1:index].replace('\\"', '"'), text[index + 1 :]
    value: list[str] = []
    pos = 0
    simple = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r", "0": "\0"}
    while pos < len(raw):
        if raw[pos] == "\\":
            if pos + 1 >= len(raw) or raw[pos + 1] not in simple:
                raise ValueError(f"an escape Paktum never writes: {raw[pos : pos + 2]!r}")
            value.append(simple[raw[pos + 1]])
            pos += 2
        else:
            value.append(raw[pos])
            pos += 1
    return "".join(value), rest


def read_quoted_list(text: str) -> list[str]:
    """`["a", "b"]` -> ["a", "b"], by the same rules."""
    if not text.startswith("["):
        raise ValueError("not a list")
    rest = text[1:].lstrip()
    values: list[str] = []
    while not rest.startswith("]"):
        value, rest = read_quoted(rest)
        values.append(value)
        rest = rest.lstrip().removeprefix(",").lstrip()
    return values
