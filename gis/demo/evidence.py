"""Small generated evidence for the demo district (and the tests): minutes and agreements as tiny PDFs,
site photos as small JPEGs whose EXIF says when and where they were taken and which way the camera faced.

Everything here is fictional and says so (示例数据 / DEMO): the PDFs are a page of plain text in a
standard font (no embedded font, no script: a few hundred bytes each), the photos a gradient with a
few shapes, deterministic for a seed.
"""
from __future__ import annotations

import datetime as dt
import io
import zlib

import numpy as np
from PIL import Image, ImageDraw

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    s = round((value - d - m / 60) * 3600, 2)
    return (float(d), float(m), s)


def sample_photo(lon: float | None = None, lat: float | None = None, taken: dt.datetime | None = None,
                 direction: float | None = None, *, size: tuple[int, int] = (640, 480), seed: int = 0,
                 quality: int = 70, serial: str | None = None, fmt: str = "JPEG") -> bytes:
    """A small photo (a sky-and-ground gradient with a few blocks) with EXIF: DateTimeOriginal from ``taken``
    (camera-local, offset +08:00), GPS ``lon``/``lat`` and GPSImgDirection ``direction`` when given, and
    ``serial`` as the camera's BodySerialNumber (a personal field that exports must drop)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y = np.linspace(0, 1, h)[:, None]
    sky = np.array([150, 190, 235]) * (1 - y) + np.array([120, 150, 90]) * y
    arr = np.repeat(sky[:, None, :], w, axis=1).reshape(h, w, 3)
    arr = np.clip(arr + rng.normal(0, 6, arr.shape), 0, 255).astype(np.uint8)
    im = Image.fromarray(arr, "RGB")
    draw = ImageDraw.Draw(im)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, w * 3 // 4)), int(rng.integers(h // 3, h * 3 // 4))
        bw, bh = int(rng.integers(w // 10, w // 4)), int(rng.integers(h // 10, h // 3))
        colour = tuple(int(c) for c in rng.integers(60, 200, 3))
        draw.rectangle([x0, y0, x0 + bw, y0 + bh], fill=colour)
    draw.text((8, 8), "DEMO", fill=(255, 255, 255))
    exif = Image.Exif()
    exif[0x0110] = "Demo camera"
    sub = exif.get_ifd(_EXIF_IFD)
    if taken is not None:
        sub[36867] = taken.strftime("%Y:%m:%d %H:%M:%S")
        sub[36881] = "+08:00"
    if serial:
        sub[0xA431] = serial
    if lon is not None and lat is not None:
        gps = exif.get_ifd(_GPS_IFD)
        gps[0] = b"\x02\x03\x00\x00"
        gps[1], gps[2] = ("N" if lat >= 0 else "S"), _dms(lat)
        gps[3], gps[4] = ("E" if lon >= 0 else "W"), _dms(lon)
        if direction is not None:
            gps[16], gps[17] = "T", float(direction)
    out = io.BytesIO()
    if fmt == "JPEG":
        im.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    else:
        im.save(out, fmt, exif=exif.tobytes())
    return out.getvalue()


def _pdf_text(s: str) -> str:
    return "(" + s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def sample_pdf(title: str, lines: list[str] = (), *, script: bool = False) -> bytes:
    """A one-page PDF of plain ASCII text in Helvetica (a standard font: nothing embedded), marked DEMO.
    ``script=True`` adds an OpenAction with JavaScript (for the tests of the flag)."""
    body = ["BT /F1 16 Tf 56 780 Td", _pdf_text(title) + " Tj", "/F1 10 Tf"]
    for line in [*lines, "DEMO - fictional sample data / shi li shu ju"]:
        body += ["0 -18 Td", _pdf_text(line) + " Tj"]
    body.append("ET")
    stream = zlib.compress("\n".join(body).encode("latin-1", "replace"))
    catalog = "<< /Type /Catalog /Pages 2 0 R" + (" /OpenAction 5 0 R" if script else "") + " >>"
    objs = [catalog, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
            " /Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>"]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(f"{i} 0 obj\n{o}\nendobj\n".encode())
    offsets.append(out.tell())
    out.write(f"4 0 obj\n<< /Length {len(stream)} /Filter /FlateDecode >>\nstream\n".encode() + stream
              + b"\nendstream\nendobj\n")
    n = 4
    if script:
        offsets.append(out.tell())
        out.write(b"5 0 obj\n<< /S /JavaScript /JS (app.alert\\('x'\\)) >>\nendobj\n")
        n = 5
    xref = out.tell()
    out.write(f"xref\n0 {n + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {n + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG of a few dozen bytes whose header declares ``width`` × ``height`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def bomb_jpeg(width: int = 50_000, height: int = 50_000) -> bytes:
    """A JPEG header (SOF0, then SOS) declaring ``width`` × ``height`` pixels, with no real image data."""
    sof = bytes([8]) + height.to_bytes(2, "big") + width.to_bytes(2, "big") + bytes([3, 1, 0x22, 0, 2, 0x11, 1,
                                                                                       3, 0x11, 1])
    sos = bytes([3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0])
    seg = (lambda m, d: b"\xff" + bytes([m]) + (len(d) + 2).to_bytes(2, "big") + d)
    return b"\xff\xd8" + seg(0xC0, sof) + seg(0xDA, sos) + b"\x00" * 32 + b"\xff\xd9"
