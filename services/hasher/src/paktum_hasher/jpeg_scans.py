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

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
SOF_PROGRESSIVE_HUFFMAN = 0xC2
# Frame markers other than progressive Huffman: we only know how to thin out SOF2 files.
OTHER_SOF = {0xC0, 0xC1, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
SOS = 0xDA
# Inside entropy-coded data 0xFF is followed by a stuffed 0x00 or a restart marker; anything
# else ends the scan.
MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def dc_scans_only(data: bytes) -> bytes | None:
    """The file without the scans a 1/8-scale decode ignores; None when that cannot be done safely.

    None for anything but a whole progressive Huffman JPEG: a baseline file has nothing to drop,
    and a file that stops before its end marker must reach the decoder whole, to be refused as
    truncated rather than decoded from the scans that happened to arrive.
    """
    if not data.startswith(SOI):
        return None
    kept = [SOI]
    full_resolution: set[int] = set()
    seen_first_ac: set[int] = set()
    progressive = False
    pos = 2
    try:
        while True:
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            if marker == 0xFF:  # fill byte before a marker
                pos += 1
                continue
            if marker == EOI[1]:
                break
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            segment_end = pos + 2 + length
            if segment_end > len(data):
                return None
            if marker in OTHER_SOF:
                return None
            if marker == SOF_PROGRESSIVE_HUFFMAN:
                progressive = True
                full_resolution = _full_resolution_components(data[pos + 4 : segment_end])
            if marker != SOS:
                kept.append(data[pos:segment_end])
                pos = segment_end
                continue
            match = MARKER_AFTER_SCAN.search(data, segment_end)
            if match is None:
                return None  # the scan runs off the end: truncated
            components, first_coefficient, high_bit = _scan_header(data[pos + 4 : segment_end])
            first_ac = first_coefficient == 1 and high_bit == 0 and not seen_first_ac.issuperset(components)
            if first_coefficient == 1 and high_bit == 0:
                seen_first_ac.update(components)
            if first_coefficient == 0 or first_ac or not full_resolution.issuperset(components):
                kept.append(data[pos : match.start()])
            pos = match.start()
    except IndexError:
        return None  # ran off the end of a marker: truncated or not a JPEG
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
