#!/usr/bin/env python3
"""Render a vegard HTML report in headless Chromium and check that every
figure drew: the whole page is captured (at a quarter of the resolution, so
the PNG stays small), and the bands of rows holding saturated colour (the
plot series; the page's own text and tables are grey) must number at least
the figures in the HTML. With every figure's drawing removed the demo
report shows 2 bands (nav links, status), with them 11; so this catches
figures that do not render, though not one missing figure among many.

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
    args = ap.parse_args()
    html = pathlib.Path(args.report).read_text()
    n_fig = html.count("<figure")
    # Tall enough for the whole page: generous per figure, table row, line.
    css_height = 1500 + 700 * n_fig + 40 * html.count("<tr>") + 30 * html.count("<p")
    scale = 0.25
    url = pathlib.Path(args.report).resolve().as_uri()
    with tempfile.TemporaryDirectory() as d:
        shot = pathlib.Path(d) / "shot.png"
        cmd = [
            args.chromium, "--headless", "--no-sandbox", "--disable-gpu",
            "--hide-scrollbars", f"--force-device-scale-factor={scale}",
            f"--window-size=1000,{css_height}", f"--screenshot={shot}", url,
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=180)
        w, h, bpp, rows = read_png(shot)
    painted = 0
    colour_rows = []
    for row in rows:
        n_colour = 0
        for x in range(0, w * bpp, bpp):
            r, g, b = row[x], row[x + 1], row[x + 2]
            if (r, g, b) != (255, 255, 255):
                painted += 1
            if max(r, g, b) - min(r, g, b) > 40:
                n_colour += 1
        colour_rows.append(n_colour >= 2)
    # Bands: runs of colour rows, merged across gaps of a few rows (lines
    # between markers, panel spacing at this scale).
    bands, gap, in_band = 0, 0, False
    for c in colour_rows:
        if c:
            if not in_band:
                bands += 1
            in_band, gap = True, 0
        else:
            gap += 1
            if gap > 6:
                in_band = False
    total = w * h
    print(f"{args.report}: {n_fig} figures, page {w}x{h} px at scale {scale}, "
          f"{100 * painted / total:.1f} % painted, {bands} bands of plot colour")
    assert painted > 0.01 * total, "the page is (almost) blank"
    assert bands >= n_fig, f"{bands} coloured bands for {n_fig} figures: a figure did not draw"
    return 0


if __name__ == "__main__":
    sys.exit(main())
