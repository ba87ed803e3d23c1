"""Drop the scans of a progressive JPEG that a 1/8-scale decode never reads, so it decodes faster.

A 1/8-scale decode (Pillow's draft mode) turns each 8x8 block of a full-resolution component into
one pixel from its DC coefficient alone; the AC coefficients of those components only cost time,
and in a progressive JPEG they fill most of the file and most of the decoding (its entropy decoder
reads every scan before any pixel comes out). So for those components we keep the DC scans and
the first AC scan that starts at coefficient 1: libjpeg's progressive smoothing re-estimates the
DC from its neighbours when no AC coefficient of a component has arrived at all, and that one
scan turns it off. Subsampled components (chroma in 4:2:0) are decoded at a larger scale that
does read AC coefficients: every scan that touches them is kept. The pixels come out identical
to decoding the whole file at 1/8 (tests/unit/test_jpeg_scans.py checks it on real files).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
SOF_PROGRESSIVE_HUFFMAN = 0xC2
# Frame markers other than progressive Huffman: we only know how to thin out SOF2 files.
OTHER_SOF = {0xC0, 0xC1, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
SOS = 0xDA
# Inside entropy-coded data 0xFF is followed by a stuffed 0x00 or a restart marker; anything
# else ends the scan.
MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


@dataclass(frozen=True)
class Segment:
    """One marker segment of a JPEG; for a scan (SOS), `end` is where its entropy-coded data ends."""

    marker: int
    start: int
    header_end: int
    end: int


class Truncated(Exception):
    """The file stops (or stops making sense) before its end marker."""


def segments(data: bytes) -> Iterator[Segment]:
    """The marker segments of the first picture in `data`, up to its end marker; Truncated before that."""
    if not data.startswith(SOI):
        raise Truncated
    pos = 2
    try:
        while True:
            if data[pos] != 0xFF:
                raise Truncated
            marker = data[pos + 1]
            if marker == 0xFF:  # fill byte before a marker
                pos += 1
                continue
            if marker == EOI[1]:
                return
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            header_end = pos + 2 + length
            if length < 2 or header_end > len(data):
                raise Truncated
            if marker != SOS:
                yield Segment(marker, pos, header_end, header_end)
                pos = header_end
                continue
            match = MARKER_AFTER_SCAN.search(data, header_end)
            if match is None:
                raise Truncated  # the scan runs off the end
            yield Segment(marker, pos, header_end, match.start())
            pos = match.start()
    except IndexError:
        raise Truncated from None  # ran off the end of a marker


def scan_count(data: bytes, stop_after: int) -> int:
    """How many scans the first picture of a JPEG has, counting no further than `stop_after` + 1.

    A progressive JPEG has about ten; libjpeg reads every scan over the whole coefficient buffer, so a
    few hundred kilobytes of repeated scans cost minutes of CPU: counted before any is decoded.
    """
    count = 0
    try:
        for segment in segments(data):
            if segment.marker == SOS:
                count += 1
                if count > stop_after:
                    break
    except Truncated:
        pass  # the decoder refuses what is truncated; the scans before the cut still count
    return count


def dc_scans_only(data: bytes) -> bytes | None:
    """The file without the scans a 1/8-scale decode ignores; None when that cannot be done safely.

    None for anything but a whole progressive Huffman JPEG: a baseline file has nothing to drop,
    and a file that stops before its end marker must reach the decoder whole, to be refused as
    truncated rather than decoded from the scans that happened to arrive.
    """
    kept = [SOI]
    full_resolution: set[int] = set()
    seen_first_ac: set[int] = set()
    progressive = False
    try:
        for segment in segments(data):
            marker = segment.marker
            if marker in OTHER_SOF:
                return None
            if marker == SOF_PROGRESSIVE_HUFFMAN:
                progressive = True
                full_resolution = _full_resolution_components(data[segment.start + 4 : segment.header_end])
            if marker != SOS:
                kept.append(data[segment.start : segment.end])
                continue
            components, first_coefficient, high_bit = _scan_header(data[segment.start + 4 : segment.header_end])
            first_ac = first_coefficient == 1 and high_bit == 0 and not seen_first_ac.issuperset(components)
            if first_coefficient == 1 and high_bit == 0:
                seen_first_ac.update(components)
            if first_coefficient == 0 or first_ac or not full_resolution.issuperset(components):
                kept.append(data[segment.start : segment.end])
    except (Truncated, IndexError):
        return None  # truncated or not a JPEG
    if not progressive:
        return None
    kept.append(EOI)
    return b"".join(kept)


def _full_resolution_components(frame: bytes) -> set[int]:
    """IDs of the components sampled at the highest rate (luma, or all three in 4:4:4)."""
    count = frame[5]
    sampling = {frame[6 + 3 * i]: frame[7 + 3 * i] for i in range(count)}
    h_max = max(s >> 4 for s in sampling.values())
    v_max = max(s & 0x0F for s in sampling.values())
    return {cid for cid, s in sampling.items() if s >> 4 == h_max and s & 0x0F == v_max}


def _scan_header(header: bytes) -> tuple[list[int], int, int]:
    """A scan's component IDs, its first spectral coefficient and its successive-approximation high bit."""
    count = header[0]
    components = [header[1 + 2 * i] for i in range(count)]
    first_coefficient = header[1 + 2 * count]
    high_bit = header[3 + 2 * count] >> 4
    return components, first_coefficient, high_bit
