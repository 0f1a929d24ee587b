"""The PNG integrity rule both sides apply before decoding (spec.PNG_CHECKSUMS = "refuse").

A PNG whose chunks do not all pass their CRC, or that ends inside a chunk, is refused with the
same words in Python (facepack/data/images.py:load_rgb raises ImageDecodeError) and in the
browser (static/facepack/png.js:pngProblem, used by the page and by the library's Blob input).
Why refuse rather than accept: the decoders disagree on their own (measured: PIL refuses a bad
CRC in IHDR, tEXt or pHYs but accepts one in IDAT; Chromium refuses IHDR and IDAT but accepts
tEXt and pHYs), so only an explicit check gives one answer, and "accept every CRC error" cannot
be made true in a browser, which refuses some. A CRC mismatch means the bytes changed after the
file was written; the user gets one clear message instead of an analysis of damaged pixels.
"""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK_HEAD = 8  # 4-byte length + 4-byte type
_CHUNK_CRC = 4


def png_problem(data: bytes) -> str | None:
    """Why a PNG breaks the rule (one line, the words static/facepack/png.js:pngProblem uses), or
    None when it passes or is not a PNG. Walks the chunks up to IEND (bytes after it are ignored)."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    pos = len(PNG_SIGNATURE)
    while pos < len(data):
        if pos + _CHUNK_HEAD > len(data):
            return "damaged PNG: the file ends inside a chunk header (truncated)"
        length, = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if not all(65 <= c <= 90 or 97 <= c <= 122 for c in kind):  # PNG chunk types are 4 ASCII letters
            return "damaged PNG: a chunk has an invalid type (the file is not a well-formed PNG)"
        name = kind.decode("ascii")
        end = pos + _CHUNK_HEAD + length
        if end + _CHUNK_CRC > len(data):
            return f"damaged PNG: the file ends inside its {name} chunk (truncated)"
        stored, = struct.unpack(">I", data[end:end + _CHUNK_CRC])
        if zlib.crc32(data[pos + 4:end]) != stored:
            return f"damaged PNG: its {name} chunk fails its CRC check (the file was changed after it was written)"
        if kind == b"IEND":
            return None
        pos = end + _CHUNK_CRC
    return None
