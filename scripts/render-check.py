#!/usr/bin/env python3
"""Render a vegard HTML report in headless Chromium and check that the
figures actually drew: the screenshot must contain the palette colours the
SVG series use (only the figures use them) over enough pixels, and the page
must not be blank.

    scripts/render-check.py REPORT.html [--chromium /usr/bin/chromium]

Standard library only: the PNG is decoded with zlib.
"""
import argparse
import pathlib
import struct
import subprocess
import sys
import tempfile
import zlib

# Okabe-Ito colours of the first three series slots (EIS/E, ESM/I, u).
PALETTE = {(0x00, 0x72, 0xB2), (0xD5, 0x5E, 0x00), (0x00, 0x9E, 0x73)}


def read_png(path):
    data = pathlib.Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--chromium", default="chromium")
    ap.add_argument("--height", type=int, default=2500)
    args = ap.parse_args()
    url = pathlib.Path(args.report).resolve().as_uri()
    with tempfile.TemporaryDirectory() as d:
        shot = pathlib.Path(d) / "shot.png"
        cmd = [
            args.chromium, "--headless", "--no-sandbox", "--disable-gpu",
            "--hide-scrollbars", f"--window-size=1000,{args.height}",
            f"--screenshot={shot}", url,
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        w, h, bpp, rows = read_png(shot)
    painted = palette = 0
    for row in rows:
        for x in range(0, w * bpp, bpp):
            rgb = (row[x], row[x + 1], row[x + 2])
            if rgb != (255, 255, 255):
                painted += 1
            if rgb in PALETTE:
                palette += 1
    total = w * h
    print(f"{args.report}: {w}x{h} px, {100 * painted / total:.1f} % painted, "
          f"{palette} px in the plot palette")
    assert painted > 0.02 * total, "the page is (almost) blank"
    assert palette > 2000, "no figure drew its series"
    return 0


if __name__ == "__main__":
    sys.exit(main())
