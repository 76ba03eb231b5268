"""Evidence leaving and entering the store: the GeoPackage export (Related Tables Extension), its import, the
evidence zip, backups that stream, and photos on printed pages. Both back ends where a store is involved."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pyogrio
import pytest
from PIL import Image

from gis.base.errors import InputError
from gis.io.evidence_zip import write_evidence_zip
from gis.io.exporter import export, export_gpkg
from gis.io.importer import import_file
from gis.store.store import Store

ROOT = Path(__file__).resolve().parent.parent
VALIDATE = Path("/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py")
SERIAL = "CAMSERIAL-4711"
OWNER = "Owner Zhang Wei"


# ------------------------------------------------------------------ test files, made in code
def jpeg(seed: int = 0, size=(640, 480), colour=(200, 60, 140), exif: bool = True, quality: int = 90,
         noise: float = 1 / 8) -> bytes:
    """A photo: a flat colour with a noise band (so that each seed differs), with the EXIF a phone writes —
    time taken, GPS position and direction, and the personal fields an export must drop."""
    rng = np.random.default_rng(seed)
    a = np.empty((size[1], size[0], 3), dtype=np.uint8)
    a[:] = colour
    band = max(1, int(size[1] * noise))
    a[:band] = rng.integers(0, 255, (band, size[0], 3), dtype=np.uint8)
    img = Image.fromarray(a)
    buf = io.BytesIO()
    if not exif:
        img.save(buf, "JPEG", quality=quality)
        return buf.getvalue()
    e = Image.Exif()
    e[0x010F], e[0x0110] = "TestPhone", "Model 9"
    e[0x013B] = OWNER  # Artist
    ifd = e.get_ifd(0x8769)
    ifd[0x9003] = "2026:05:20 10:30:00"
    ifd[0xA430], ifd[0xA431] = OWNER, SERIAL  # CameraOwnerName, BodySerialNumber
    gps = e.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (37.0, 24.0, 10.0), "E", (121.0, 18.0, 20.0)
    gps[16], gps[17] = "T", 135.0
    img.save(buf, "JPEG", quality=quality, exif=e)
    return buf.getvalue()


def pdf(text: str = "minutes") -> bytes:
    """A one-page PDF (no scripts)."""
    body = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
            b"<< /Length %d >>\nstream\n" % len(body) + body + b"\nendstream"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def huge_png() -> bytes:
    """A PNG header declaring 50,000 × 50,000 pixels (a decompression bomb), never decodable."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")


def with_evidence(store):
    """A photo on V01-001, a second (older) one on it, a document on V01-002's new event, a restricted agreement
    on V01-003. Returns their attachments."""
    photo = store.add_attachment("V01-001", jpeg(1), "IMG_0001.jpg", "张伟", caption="现场东侧")
    older = store.add_attachment("V01-001", jpeg(2, colour=(40, 90, 200)), "IMG_0002.jpg", "张伟",
                                 caption="拆除前")
    store.advance("V01-002", "listed", "2024-04-01", "王芳", note="公示期满")
    ev = store.history("V01-002")[-1]
    doc = store.add_attachment("V01-002", pdf(), "公示.pdf", "王芳", event_id=ev.id, caption="入库公示")
    secret = store.add_attachment("V01-003", pdf("agreement"), "签约协议.pdf", "张伟", caption="协议",
                                  restricted=True)
    return {"photo": photo, "older": older, "doc": doc, "secret": secret, "event": ev}


# ------------------------------------------------------------------ the GeoPackage export
def test_geopackage_export_carries_the_media_table_and_its_relations(tiny_store, tmp_path):
    ev = with_evidence(tiny_store)
    village = tiny_store.add_attachment("V01", pdf("village"), "村规民约.pdf", "张伟", target_kind="village")
    site = tiny_store.add_attachment("hsr_ai", jpeg(5), "园区.jpg", "张伟", target_kind="site")
    out = tmp_path / "e.gpkg"
    summary = export(tiny_store, "gpkg", out)
    assert summary["attachments"] == 6 and summary["restricted_left_out"] == 0  # no accounts: no one to hide from
    assert export(tiny_store, "gpkg", tmp_path / "min.gpkg", codes=["MIN-01"])["attachments"] == 0
    layers = dict(pyogrio.list_layers(out))
    assert {"attachments", "parcels_attachments", "stage_events_attachments", "villages_attachments",
            "parks_attachments"} <= set(layers)
    con = sqlite3.connect(out)
    rels = con.execute("SELECT base_table_name, base_primary_column, related_table_name, related_primary_column,"
                       " relation_name, mapping_table_name FROM gpkgext_relations ORDER BY id").fetchall()
    assert ("parcels", "fid", "attachments", "id", "media", "parcels_attachments") in rels
    assert ("stage_events", "id", "attachments", "id", "media", "stage_events_attachments") in rels
    ext = {r[0] for r in con.execute("SELECT table_name FROM gpkg_extensions WHERE extension_name ="
                                     " 'gpkg_related_tables' AND scope = 'read-write'")}
    assert ext == {"gpkgext_relations", "parcels_attachments", "stage_events_attachments", "villages_attachments",
                   "parks_attachments"}
    assert con.execute("SELECT v.code, m.related_id FROM villages v JOIN villages_attachments m ON m.base_id = v.fid"
                       ).fetchall() == [("V01", village.id)]
    assert con.execute("SELECT p.code, m.related_id FROM parks p JOIN parks_attachments m ON m.base_id = p.fid"
                       ).fetchall() == [("hsr_ai", site.id)]
    # parcel → photo through the mapping table
    got = con.execute("SELECT a.id, a.content_type, a.caption, a.data, a.lon, a.lat, a.taken_at FROM parcels p"
                      " JOIN parcels_attachments m ON m.base_id = p.fid JOIN attachments a ON a.id = m.related_id"
                      " WHERE p.code = 'V01-001' ORDER BY a.id").fetchall()
    assert [(r[0], r[1], r[2]) for r in got] == [(ev["photo"].id, "image/jpeg", "现场东侧"),
                                                 (ev["older"].id, "image/jpeg", "拆除前")]
    data = bytes(got[0][3])
    assert data[:3] == b"\xff\xd8\xff" and SERIAL.encode() not in data and OWNER.encode() not in data
    exif = Image.open(io.BytesIO(data)).getexif()
    assert not exif.get_ifd(0x8825)  # no GPS in the exported bytes ...
    assert got[0][4] == pytest.approx(121.305556, abs=1e-4) and got[0][5] == pytest.approx(37.402778, abs=1e-4)
    assert got[0][6].startswith("2026-05-20T10:30")  # ... the place and time stay in the columns
    doc = con.execute("SELECT a.filename, a.sha256, length(a.data) FROM stage_events_attachments m"
                      " JOIN attachments a ON a.id = m.related_id WHERE m.base_id = ?", (ev["event"].id,)).fetchone()
    assert doc[0] == "公示.pdf" and doc[1] == hashlib.sha256(pdf()).hexdigest() and doc[2] == len(pdf())
    con.close()
    res = subprocess.run(["/usr/bin/python3", str(VALIDATE), str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run(["ogrinfo", "-ro", "-q", str(out)], capture_output=True, text=True)
    assert "attachments (None)" in res.stdout and "parcels_attachments (None)" in res.stdout
    res = subprocess.run(["ogrinfo", "-ro", "-q", str(out), "-sql",
                          "SELECT relation_name, mapping_table_name FROM gpkgext_relations"],
                         capture_output=True, text=True)
    assert "relation_name (String) = media" in res.stdout and "mapping_table_name (String) = parcels_attachments" \
        in res.stdout


def test_an_export_without_attachments_has_no_related_tables(tiny_store, tmp_path):
    out = tmp_path / "plain.gpkg"
    assert export(tiny_store, "gpkg", out)["attachments"] == 0
    con = sqlite3.connect(out)
    assert not con.execute("SELECT 1 FROM sqlite_master WHERE name IN ('gpkgext_relations', 'attachments')").fetchall()
    con.close()


def test_restricted_documents_leave_only_with_an_account_allowed_to_see_them(tiny_store, tmp_path):
    tiny_store.add_user("admin", "admin-secret", "admin", "bootstrap")
    tiny_store.add_user("viewer", "viewer-secret", "viewer", "admin")
    ev = with_evidence_as(tiny_store, "admin")
    anonymous = export(tiny_store, "gpkg", tmp_path / "a.gpkg")
    as_viewer = export(tiny_store, "gpkg", tmp_path / "v.gpkg", viewer="viewer")
    as_admin = export(tiny_store, "gpkg", tmp_path / "ad.gpkg", viewer="admin")
    assert (anonymous["attachments"], anonymous["restricted_left_out"]) == (3, 1)
    assert (as_viewer["attachments"], as_viewer["restricted_left_out"]) == (3, 1)
    assert (as_admin["attachments"], as_admin["restricted_left_out"]) == (4, 0)
    ids = lambda p: {r[0] for r in sqlite3.connect(p).execute("SELECT id FROM attachments")}  # noqa: E731
    assert ev["secret"].id not in ids(tmp_path / "v.gpkg") and ev["secret"].id in ids(tmp_path / "ad.gpkg")


def with_evidence_as(store, by: str):
    photo = store.add_attachment("V01-001", jpeg(1), "IMG_0001.jpg", by, caption="现场东侧")
    older = store.add_attachment("V01-001", jpeg(2), "IMG_0002.jpg", by, caption="拆除前")
    store.advance("V01-002", "listed", "2024-04-01", by)
    ev = store.history("V01-002")[-1]
    doc = store.add_attachment("V01-002", pdf(), "公示.pdf", by, event_id=ev.id)
    secret = store.add_attachment("V01-003", pdf("agreement"), "签约协议.pdf", by, restricted=True)
    return {"photo": photo, "older": older, "doc": doc, "secret": secret, "event": ev}


@pytest.mark.slow
def test_qgis_and_gdal_read_the_relation_from_parcel_to_photo(tiny_gpkg, tmp_path):
    ev = with_evidence(tiny_gpkg)
    out = tmp_path / "q.gpkg"
    export(tiny_gpkg, "gpkg", out)
    code = f"""
import sqlite3, sys
from osgeo import gdal
from qgis.core import QgsApplication, QgsVectorLayer, QgsProject, QgsRelation, QgsFeatureRequest
gdal.UseExceptions()
ds = gdal.OpenEx({str(out)!r})
names = ds.GetRelationshipNames()
rel = ds.GetRelationship("parcels_attachments_media")
print("gdal", sorted(names), rel.GetLeftTableName(), rel.GetRightTableName(), rel.GetMappingTableName(),
      rel.GetRelatedTableType())
app = QgsApplication([], False); app.initQgis()
path = {str(out)!r}
layers = {{n: QgsVectorLayer(f"{{path}}|layername={{n}}", n, "ogr") for n in ("parcels", "parcels_attachments",
                                                                            "attachments")}}
assert all(l.isValid() for l in layers.values())
QgsProject.instance().addMapLayers(list(layers.values()))
# the relation as gpkgext_relations declares it: parcels ← mapping → attachments (a many-to-many in QGIS)
row = sqlite3.connect(path).execute("SELECT base_primary_column, related_primary_column FROM gpkgext_relations"
                                    " WHERE mapping_table_name = 'parcels_attachments'").fetchone()
to_parcel, to_media = QgsRelation(), QgsRelation()
for r, ref, field, key, rid in ((to_parcel, "parcels", "base_id", row[0], "p"),
                                (to_media, "attachments", "related_id", row[1], "a")):
    r.setId(rid); r.setName(rid)
    r.setReferencingLayer(layers["parcels_attachments"].id()); r.setReferencedLayer(layers[ref].id())
    r.addFieldPair(field, key)
    assert r.isValid(), r.validationError()
parcel = next(layers["parcels"].getFeatures(QgsFeatureRequest().setFilterExpression("code = 'V01-001'")))
for link in sorted(to_parcel.getRelatedFeatures(parcel), key=lambda f: f["related_id"]):
    media = to_media.getReferencedFeature(link)
    data = bytes(media["data"])
    print("qgis", media["id"], media["content_type"], media["caption"], data[:3].hex())
"""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    res = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True, env=env, timeout=120)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith(("gdal", "qgis"))]
    assert lines == [
        "gdal ['parcels_attachments_media', 'stage_events_attachments_media'] parcels attachments "
        "parcels_attachments media",
        f"qgis {ev['photo'].id} image/jpeg 现场东侧 ffd8ff",
        f"qgis {ev['older'].id} image/jpeg 拆除前 ffd8ff",
    ], res.stdout + res.stderr


# ------------------------------------------------------------------ import of such a GeoPackage
def source_store(tiny_store_template, tmp_path, catalog) -> Store:
    path = tmp_path / "source.gpkg"
    shutil.copy(tiny_store_template, path)
    return Store(path, catalog)


def test_import_of_an_exported_geopackage_brings_its_attachments_back(tiny_store, tiny_store_template, tmp_path,
                                                                      catalog):
    src = source_store(tiny_store_template, tmp_path, catalog)
    ev = with_evidence(src)
    exported = tmp_path / "export.gpkg"
    export(src, "gpkg", exported)
    dry = import_file(tiny_store, exported, by="导入员", dry_run=True)
    assert dry["attachments"] == 4 and not tiny_store.attachments("V01-001")
    rep = import_file(tiny_store, exported, by="导入员")
    assert rep["attachments_written"] == 4
    secret = tiny_store.attachments("V01-003")
    assert [(a.filename, a.restricted) for a in secret] == [("签约协议.pdf", True)]  # still personal
    back = tiny_store.attachments("V01-001")
    assert sorted(a.caption for a in back) == ["拆除前", "现场东侧"]
    a = next(a for a in back if a.caption == "现场东侧")
    # a store without accounts believes the file (as for its carried events): who added it, and when
    assert a.kind == "photo" and a.taken_at.startswith("2026-05-20T10:30") and a.added_by == "张伟"
    assert a.added_at == src.attachment(ev["photo"].id).added_at
    data = tiny_store.attachment_data(a.id)
    assert SERIAL.encode() not in data and tiny_store.attachment_thumbnail(a.id)[:3] == b"\xff\xd8\xff"
    docs = tiny_store.attachments("V01-002")  # the parcel's own and its events'
    assert [d.filename for d in docs] == ["公示.pdf"] and tiny_store.attachment_data(docs[0].id) == pdf()
    assert src.attachment(ev["doc"].id).sha256 == docs[0].sha256
    # the same file again: the attachments are known (by the store's sha256 the export carried), stored once
    again = import_file(tiny_store, exported, by="导入员")
    assert again["attachments_written"] == 0 and len(tiny_store.attachments("V01-001")) == 2
    assert again["attachments_present"] == again["attachments"] == 4  # counted as there already, not lost


def test_an_import_into_an_empty_store_links_documents_to_the_carried_events(tiny_store_template, tmp_path, catalog):
    src = source_store(tiny_store_template, tmp_path, catalog)
    ev = with_evidence(src)
    exported = tmp_path / "export.gpkg"
    export(src, "gpkg", exported)
    empty = tmp_path / "empty.gpkg"
    export_gpkg(src, empty, codes=[])
    target = Store(empty, catalog)
    rep = import_file(target, exported, by="导入员")
    assert rep["new"] == 5 and rep["attachments_written"] == 4
    event = target.history("V01-002")[-1]
    assert (event.action, event.to_stage, event.event_date) == ("advance", "listed", ev["event"].event_date)
    linked = target.attachments("V01-002")
    assert [a.event_id for a in linked] == [event.id]


def test_an_attachment_that_fails_the_upload_checks_refuses_the_whole_import(tiny_store, tiny_store_template,
                                                                             tmp_path, catalog):
    src = source_store(tiny_store_template, tmp_path, catalog)
    with_evidence(src)
    src.set_blocked("MIN-01", True, "权属争议", "张伟", "2025-01-02")  # a change the import would carry
    exported = tmp_path / "export.gpkg"
    export(src, "gpkg", exported)
    con = sqlite3.connect(exported)
    with con:
        con.execute("UPDATE attachments SET data = ? WHERE caption = '拆除前'", (huge_png(),))
    con.close()
    version = tiny_store.data_version()
    with pytest.raises(InputError) as e:
        import_file(tiny_store, exported, by="导入员")
    assert e.value.key == "import.bad_attachments" and "IMG_0002.jpg" in e.value.message("en")
    assert tiny_store.data_version() == version and not tiny_store.attachments("V01-001")
    assert not tiny_store.parcel("MIN-01")["blocked"]  # nothing of the file landed


# ------------------------------------------------------------------ the evidence zip
def test_a_parcels_evidence_zip_has_sensible_names_a_manifest_and_no_personal_exif(tiny_store, tmp_path):
    ev = with_evidence(tiny_store)
    out = tmp_path / "V01-001.zip"
    summary = write_evidence_zip(tiny_store, out, code="V01-001")
    assert summary["files"] == 2
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert names[-2:] == ["manifest.csv", "manifest.json"]
        files = names[:-2]
        assert all(n.startswith("V01-001/") and n.endswith(".jpg") for n in files)
        assert any("现场东侧" in n and "2026-05-20" in n for n in files)
        manifest = json.loads(zf.read("manifest.json"))["files"]
        for m in manifest:
            data = zf.read(m["file"])
            assert hashlib.sha256(data).hexdigest() == m["sha256"] and len(data) == m["size"]
            assert SERIAL.encode() not in data and OWNER.encode() not in data
        east = next(m for m in manifest if m["caption"] == "现场东侧")
        assert east["id"] == ev["photo"].id and east["store_sha256"] == ev["photo"].sha256
        assert east["taken_at"].startswith("2026-05-20T10:30") and east["lon"] == pytest.approx(121.3056, abs=1e-3)
        rows = list(csv.reader(io.StringIO(zf.read("manifest.csv").decode("utf-8-sig"))))
        assert rows[0][:3] == ["文件", "附件编号", "地块编号"] and len(rows) == 3


def test_a_villages_evidence_zip_holds_its_parcels_and_names_the_stage_event(tiny_store, tmp_path):
    tiny_store.add_user("admin", "admin-secret", "admin", "bootstrap")
    with_evidence_as(tiny_store, "admin")
    out = tmp_path / "v.zip"
    summary = write_evidence_zip(tiny_store, out, village="V01")
    assert summary["files"] == 3 and summary["restricted_left_out"] == 1 and summary["parcels"] == 3
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))["files"]
    doc = next(m for m in manifest if m["parcel"] == "V01-002")
    assert doc["file"].startswith("V01-002/001_2024-04-01_入库") and doc["event_stage"].startswith("入库")
    assert doc["event_date"] == "2024-04-01" and doc["event_action"]
    full = write_evidence_zip(tiny_store, tmp_path / "all.zip", village="V01", viewer="admin")
    assert full["files"] == 4


def test_cli_attachment_zip(tiny_gpkg, tmp_path):
    with_evidence(tiny_gpkg)
    env = dict(os.environ, RENEWAL_DATA_DIR=str(tmp_path))
    run = lambda *a: subprocess.run([sys.executable, "-m", "gis.cli", "--store", str(tiny_gpkg.path), *a],  # noqa
                                    capture_output=True, text=True, env=env, cwd=ROOT)
    res = run("attachment", "zip", "V01-001", "-o", str(tmp_path / "p.zip"))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["files"] == 2
    res = run("attachment", "zip", "--village", "V01", "-o", str(tmp_path / "v.zip"))
    assert res.returncode == 0 and json.loads(res.stdout)["files"] == 4, res.stderr
    res = run("attachment", "zip", "MIN-01", "-o", str(tmp_path / "none.zip"))
    assert res.returncode == 2 and "没有可导出的证明材料" in res.stderr and not (tmp_path / "none.zip").exists()
    res = run("attachment", "zip", "-o", str(tmp_path / "x.zip"))
    assert res.returncode == 2 and "--village" in res.stderr


# ------------------------------------------------------------------ backups stream the attachments
BACKUP_PROBE = """
import json, os, sys, threading, time, tracemalloc
from gis.model.pipelines import load_catalog
from gis.store.backup import backup
from gis.store.open import open_store_at

def status(key, pid="self"):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0

tool_peak, done = [0], threading.Event()

def watch():  # the high-water mark of a dump tool this process runs (pg_dump), read while it runs
    me = str(os.getpid())
    while not done.is_set():
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                comm = open(f"/proc/{pid}/comm").read().strip()
            except OSError:
                continue
            if stat[1] == me and comm == "pg_dump":
                tool_peak[0] = max(tool_peak[0], status("VmHWM:", pid))
        time.sleep(0.01)

store = open_store_at(sys.argv[1], load_catalog())
store.parcels(geometry=False)
open("/proc/self/clear_refs", "w").write("5")  # the high-water mark starts again from here
before = status("VmRSS:")
threading.Thread(target=watch, daemon=True).start()
tracemalloc.start()
backup(store, sys.argv[2], by="admin")
done.set()
print(json.dumps({"rss_growth": status("VmHWM:") - before, "python_peak": tracemalloc.get_traced_memory()[1],
                  "tool_peak": tool_peak[0]}))
"""


@pytest.mark.slow
def test_a_backup_of_many_photos_streams_them(tiny_store, tmp_path):
    tiny_store.add_user("admin", "admin-secret", "admin", "bootstrap")
    big = jpeg(0, size=(1600, 1200), quality=95, noise=1.0)
    total = 0
    for i in range(30):  # ~60 MB of photos, each distinct
        data = big[:-2] + i.to_bytes(4, "big") * 8 + big[-2:]  # bytes after the scan, before EOI: still a JPEG
        tiny_store.add_attachment(["V01-001", "V01-002", "HSR-001"][i % 3], data, f"P{i:03d}.jpg", "admin")
        total += len(data)
    assert total > 50e6
    out = tmp_path / ("backup.gpkg" if tiny_store.backend == "gpkg" else "backup.dump")
    res = subprocess.run([sys.executable, "-c", BACKUP_PROBE, tiny_store.where, str(out)], capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    m = json.loads(res.stdout)
    assert out.stat().st_size > total * 0.9  # the photos are in it (pg_dump cannot squeeze JPEGs)
    assert m["python_peak"] < total / 20, m  # no photo passed through Python
    assert m["rss_growth"] < total / 4, m  # nor sat in this process's memory
    if tiny_store.backend == "pg":
        assert 0 < m["tool_peak"] < total / 2, m  # nor in pg_dump's (it copies a row at a time: ~24 MB here)


# ------------------------------------------------------------------ prints
def _pdf_images(path: Path) -> int:
    res = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, text=True)
    return max(0, len(res.stdout.strip().splitlines()) - 2)


def test_the_briefing_page_shows_the_latest_site_photo(tiny_store, tmp_path):
    from gis.printing.briefing import render_parcel_page

    with_evidence(tiny_store)
    # the newest is the one taken last: both carry the same EXIF time, so the one added last wins
    tiny_store.add_attachment("V01-001", jpeg(3, colour=(20, 170, 60), exif=False), "latest.jpg", "张伟",
                              caption="最新一张")
    with_photo = render_parcel_page(tiny_store, "V01-001", tmp_path / "p.pdf")
    without = render_parcel_page(tiny_store, "V01-001", tmp_path / "n.pdf", photo=False)
    no_photos = render_parcel_page(tiny_store, "MIN-01", tmp_path / "m.pdf")
    assert (_pdf_images(with_photo), _pdf_images(without), _pdf_images(no_photos)) == (1, 0, 0)
    text = subprocess.run(["pdftotext", str(with_photo), "-"], capture_output=True, text=True).stdout
    assert "最新现场照片" in text
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", str(with_photo), str(tmp_path / "p")], check=True)
    px = np.asarray(Image.open(tmp_path / "p.png").convert("RGB")).astype(int)
    h, w = px.shape[:2]
    inset = px[int(h * 118 / 210): int(h * 150 / 210), int(w * 125 / 297): int(w * 178 / 297)]
    green = (np.abs(inset - [20, 170, 60]).sum(axis=2) < 60).mean()
    assert green > 0.3, green  # the latest photo (green), not the older ones


def test_an_atlas_with_photos_adds_a_photo_page_after_each_parcel_that_has_photos(tiny_store, tmp_path):
    from gis.printing.briefing import render_atlas, select_parcels

    with_evidence(tiny_store)
    sel = select_parcels(tiny_store, village="V01")
    plain = render_atlas(tiny_store, sel, tmp_path / "a.pdf", jobs=1)
    with_photos = render_atlas(tiny_store, sel, tmp_path / "b.pdf", jobs=1, photos=True)
    assert (plain["pages"], with_photos["pages"]) == (5, 6)  # cover, index, 3 parcels (+ V01-001's photos)
    page = lambda n: subprocess.run(["pdftotext", "-f", str(n), "-l", str(n), str(tmp_path / "b.pdf"), "-"],  # noqa
                                    capture_output=True, text=True).stdout
    assert "V01-001" in page(3) and "最新现场照片" in page(3)
    assert "现场照片" in page(4) and "现场东侧" in page(4) and "拆除前" in page(4)
    assert "V01-002" in page(5)
    index = page(2)
    assert [ln for ln in index.splitlines() if ln.strip()][-3:] != []  # the index is there
    res = subprocess.run(["pdfinfo", str(tmp_path / "b.pdf")], capture_output=True, text=True).stdout
    assert "Pages:           6" in res
