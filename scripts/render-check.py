#!/usr/bin/env python3
"""Render a vegard HTML report in headless Chromium and check that every
figure drew: the whole page is captured (at a quarter of the resolution, so
the PNG stays small), and the bands of rows holding saturated colour (the
plot series; the page's own text and tables are grey) must number at least
the figures in the HTML. With every figure's drawing removed the demo
report shows 2 bands (nav links, status), with them 11; so this catches
figures that do not render, though not one missing figure among many.

A report organised by temperature (a sweep, or a folder of runs at several
temperatures: its tables start with a "T setpoint / °C" column) is checked
further, figure by figure:
  - every section whose table lists two or more setpoints has its overlay
    figure (cv-, loops-, nyquist-, bode-, esm-by-temperature);
  - an overlay has one legend entry in °C and one series colour per
    setpoint of its section's table, and each of those colours is painted
    when Chromium renders the figure on its own (a series that did not
    draw fails, not just a figure);
  - Nyquist figures carry frequency labels at decades ("1 kHz", "0.1 Hz");
  - the Arrhenius figure has its °C axis ("T / °C") along the top.

    scripts/render-check.py REPORT.html [--chromium /usr/bin/chromium]

Standard library only: the PNG is decoded with zlib.
"""
import argparse
import html as htmllib
import pathlib
import re
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
    check_temperature_report(html, args.chromium)
    return 0


# Section -> the overlay figures a temperature-organised report must have.
OVERLAYS = {
    "cv": ["cv-by-temperature"],
    "deformation": ["loops-by-temperature"],
    "eis": ["nyquist-by-temperature", "bode-by-temperature"],
    "esm": ["esm-by-temperature"],
}
SETPOINT_HEAD = "T setpoint / °C"
SVG_NS = "{http://www.w3.org/2000/svg}"


def sections(html):
    """id -> the section's HTML."""
    return {m.group(1): m.group(2) for m in re.finditer(
        r'<section id="([^"]+)">(.*?)</section>', html, re.S)}


def figures(html):
    """id (without fig-) -> the figure's inline SVG text."""
    return {m.group(1): m.group(2) for m in re.finditer(
        r'<figure id="fig-([^"]+)">\s*(<svg.*?</svg>)', html, re.S)}


def setpoints(section_html):
    """Distinct values of the first "T setpoint / °C" column in a section."""
    out = set()
    for t in re.finditer(r"<table[^>]*>(.*?)</table>", section_html, re.S):
        heads = re.findall(r"<th>(.*?)</th>", t.group(1))
        if not heads or htmllib.unescape(heads[0]) != SETPOINT_HEAD:
            continue
        for row in re.findall(r"<tr>(.*?)</tr>", t.group(1), re.S):
            cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
            if cells and cells[0].strip():
                out.add(float(cells[0]))
    return out


def svg_texts(svg):
    import xml.etree.ElementTree as ET
    root = ET.fromstring(svg)
    return root, ["".join(t.itertext()).strip() for t in root.iter(SVG_NS + "text")]


def saturated(hex_colour):
    if not re.fullmatch(r"#[0-9A-Fa-f]{6}", hex_colour or ""):
        return False
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return max(r, g, b) - min(r, g, b) > 40


def series_colours(root):
    """Colours of the data strokes and markers (saturated ones: the grid,
    frame and text are grey or black)."""
    out = set()
    for el in root.iter():
        tag = el.tag.replace(SVG_NS, "")
        if tag == "polyline" and el.get("stroke-width") == "2":
            c = el.get("stroke")
        elif tag == "circle":
            c = el.get("fill")
        else:
            continue
        if saturated(c):
            out.add(c.upper())
    return out


def painted_colours(svg, colours, chromium):
    """Render one SVG alone at 1 px per CSS px; how many pixels of each
    colour (within a small distance, antialiasing) Chromium painted."""
    w = int(re.search(r'width="(\d+)"', svg).group(1))
    h = int(re.search(r'height="(\d+)"', svg).group(1))
    with tempfile.TemporaryDirectory() as d:
        page = pathlib.Path(d) / "fig.html"
        page.write_text(
            "<!DOCTYPE html><html><head><meta charset='utf-8'><style>body{margin:0}"
            f"</style></head><body>{svg}</body></html>"
        )
        shot = pathlib.Path(d) / "fig.png"
        cmd = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--force-device-scale-factor=1", f"--window-size={w},{h}",
            f"--screenshot={shot}", page.resolve().as_uri(),
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=180)
        pw, ph, bpp, rows = read_png(shot)
    want = {c: tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in colours}
    counts = dict.fromkeys(colours, 0)
    for row in rows:
        for x in range(0, pw * bpp, bpp):
            px = (row[x], row[x + 1], row[x + 2])
            if max(px) - min(px) <= 40:
                continue
            for c, rgb in want.items():
                if sum(abs(a - b) for a, b in zip(px, rgb)) <= 24:
                    counts[c] += 1
    return counts


def check_temperature_report(html, chromium):
    secs = sections(html)
    figs = figures(html)
    temps = {sid: setpoints(body) for sid, body in secs.items()}
    if not any(len(t) >= 2 for t in temps.values()):
        print("not organised by temperature: no overlay checks")
        return
    checked = []
    for sid, fig_ids in OVERLAYS.items():
        n = len(temps.get(sid, ()))
        if n < 2:
            continue
        for fid in fig_ids:
            assert fid in figs, f"section {sid}: {n} temperatures but no overlay figure {fid}"
            root, texts = svg_texts(figs[fid])
            # "30 °C", or "30 °C, <run>" when two runs share a setpoint.
            legend = [t for t in texts if re.fullmatch(r"-?\d+(\.\d+)? °C(, .*)?", t)]
            legend_temps = {t.split(" °C")[0] for t in legend}
            assert len(legend_temps) == n, f"{fid}: legend {legend} for {n} setpoints"
            colours = series_colours(root)
            assert len(colours) == n, f"{fid}: {len(colours)} series colours for {n} setpoints: {colours}"
            counts = painted_colours(figs[fid], colours, chromium)
            # A 2 px line or a few 3 px markers: dozens of pixels at least.
            faint = {c: k for c, k in counts.items() if k < 20}
            assert not faint, f"{fid}: series colours not painted by Chromium: {faint}"
            checked.append(f"{fid} ({n} series: {min(counts.values())}+ px each)")
    for fid, svg in figs.items():
        _, texts = svg_texts(svg)
        if "nyquist" in fid:
            decades = [t for t in texts if re.fullmatch(r"[\d.]+ k?Hz", t)]
            assert len(decades) >= 2, f"{fid}: no decade labels ({texts})"
            checked.append(f"{fid}: {len(decades)} decade labels")
        if fid == "arrhenius":
            assert "T / °C" in texts, f"arrhenius: no °C axis ({texts})"
            checked.append("arrhenius: °C axis")
    print("temperature report: " + "; ".join(checked))


if __name__ == "__main__":
    sys.exit(main())
