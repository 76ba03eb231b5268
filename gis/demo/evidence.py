"""Small generated evidence for the demo district (and the tests): minutes and agreements as tiny PDFs,
site photos as small JPEGs whose EXIF says when and where they were taken and which way the camera faced.

Everything here is fictional and says so (示例数据 / DEMO): the PDFs are a page of plain text in a
standard font (no embedded font, no script: a few hundred bytes each), the photos a gradient with a
few shapes, deterministic for a seed.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import zlib

import numpy as np
import shapely
from PIL import Image, ImageDraw

from gis.model import media
from gis.store.gpkg import parse_blob

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
    for line in [*lines, "DEMO - fictional sample data"]:
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


# --------------------------------------------------------------------------- the demo's evidence
#: what the demo's documents are called, per stage needing one
DOC_TITLES = {"vote": ("村民表决会议纪要", "Villagers' vote minutes"),
              "signing": ("补偿安置协议签约记录", "Compensation agreements signed")}
PHOTO_STAGES = ("demolition", "clearance")  # a site photo on the latest of these in each village
#: the demo's office began keeping evidence in the store on this day: earlier events carry none (the demo
#: stays small: ~1,000 documents of ~0.6 KB rather than ~2,800)
EVIDENCE_FROM = "2026-01-01"


def _centroids(con) -> dict[str, tuple[float, float]]:
    out = {}
    for code, blob in con.execute("SELECT code, geom FROM parcels ORDER BY fid"):
        empty, _, offset = parse_blob(bytes(blob))
        if not empty:
            c = shapely.from_wkb(bytes(blob)[offset:]).representative_point()
            out[code] = (c.x, c.y)
    return out


def add_demo_evidence(con, seed: int, catalog, columns: tuple[str, ...]) -> dict:
    """Attach generated evidence to the demo's events, in the open transaction of a fresh demo file:
    a small PDF on every advance since ``EVIDENCE_FROM`` to a stage that needs a document (the vote's
    minutes, the signing record: restricted, as the pipeline says), and one site photo per village, on the
    latest demolition or clearance there, taken at the parcel with GPS and a direction. Deterministic."""
    rng = np.random.default_rng([seed, 17])
    gated = {(k, s.key): s for k, p in catalog.pipelines.items() for s in p.stages if s.evidence == "document"}
    kinds = {k.key: k.pipeline for k in catalog.kinds.values()}
    parcels = {r[0]: (r[1], r[2], r[3]) for r in con.execute("SELECT code, fid, kind, village FROM parcels")}
    events = con.execute("SELECT id, parcel, to_stage, event_date, recorded_at, recorded_by FROM stage_events"
                         " WHERE action = 'advance' ORDER BY id").fetchall()
    centroids = _centroids(con)
    rows = []
    for eid, code, stage, date, at, by in events:
        fid, kind, village = parcels[code]
        st = gated.get((kinds.get(kind), stage))
        if st is None or date < EVIDENCE_FROM:
            continue
        zh, en = DOC_TITLES.get(stage, (st.label_zh, st.label_en))
        data = sample_pdf(f"{en} - {code}", [f"Parcel {code}, village {village or '-'}, {date}"])
        rows.append((eid, code, fid, data, f"{code}-{stage}.pdf", f"{zh}（示例）", by, at, st.evidence_restricted))
    latest: dict[str, tuple] = {}
    for eid, code, stage, date, at, by in events:
        fid, kind, village = parcels[code]
        if stage in PHOTO_STAGES and village and code in centroids:
            latest[village] = (eid, code, fid, date, at, by)
    for village in sorted(latest):
        eid, code, fid, date, at, by = latest[village]
        lon, lat = centroids[code]
        taken = dt.datetime.fromisoformat(date) + dt.timedelta(hours=10, minutes=int(rng.integers(0, 300)))
        data = sample_photo(lon + float(rng.normal(0, 0.0001)), lat + float(rng.normal(0, 0.0001)), taken,
                            float(rng.integers(0, 360)), size=(400, 300), seed=int(rng.integers(1 << 30)),
                            quality=55)
        rows.append((eid, code, fid, data, f"{code}-site.jpg", "现场照片（示例）", by, at, False))
    rows.sort(key=lambda r: r[0])
    cols = ", ".join(columns)
    for eid, code, fid, data, name, caption, by, at, restricted in rows:
        info = media.inspect(data, name)
        thumb = media.thumbnail(data) if info.kind == media.PHOTO else None
        values = dict(content_type=info.content_type, target_kind="event", target_code=code, event_id=eid,
                      kind=info.kind, filename=name, size=info.size, sha256=hashlib.sha256(data).hexdigest(),
                      caption=caption, added_by=by, added_at=at, taken_at=info.taken_at, lon=info.lon, lat=info.lat,
                      direction=info.direction, width=info.width, height=info.height, has_script=0,
                      restricted=int(restricted), thumbnail=thumb, data=data)
        new_id = con.execute(f"INSERT INTO attachments ({cols}) VALUES ({', '.join('?' * len(columns))})",
                             tuple(values.get(c) for c in columns)).lastrowid
        con.execute("INSERT INTO parcels_attachments (base_id, related_id) VALUES (?, ?)", (fid, new_id))
    return {"documents": sum(1 for r in rows if r[3][:4] == b"%PDF"), "photos": sum(1 for r in rows if r[3][:4] != b"%PDF")}
