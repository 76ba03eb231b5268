"""Hostile uploads: zip bombs by ratio, deep nesting, KML past the first block, virtual tables parsed,
stale staged copies, a full disk; and a heavy import in a capped child process (both back ends)."""
from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
import shapely

from gis.base.errors import InputError
from gis.io import isolation, uploads
from gis.io.exporter import export_gpkg
from gis.io.importer import ImportOptions, prepare_import
from gis.io.readers import read_layer
from gis.io.uploads import MB, stage_files, stage_path

ROOT = Path(__file__).resolve().parent.parent
X0, Y0 = 121.30, 37.40


def _fc(n: int = 2) -> bytes:
    feats = [{"type": "Feature", "properties": {"code": f"H{i:03d}"},
              "geometry": shapely.geometry.mapping(shapely.box(X0 + 0.0001 + i * 0.001, Y0 + 0.004,
                                                               X0 + 0.0009 + i * 0.001, Y0 + 0.0048))}
             for i in range(n)]
    return json.dumps({"type": "FeatureCollection", "features": feats}).encode()


def _zeros_zip(mb: int, name: str = "parcels.geojson") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, zf.open(name, "w") as f:
        f.write(b'{"type": "FeatureCollection", "features": []}')
        for _ in range(mb):
            f.write(b" " * MB)
    return buf.getvalue()


# ------------------------------------------------------------------ zip bombs
def test_a_zip_that_expands_more_than_100_to_1_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    data = _zeros_zip(60)  # 60 MB of blanks in ~60 KB: within the 1 GB limit, 1000:1
    assert len(data) < 100_000
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    t = time.perf_counter()
    with pytest.raises(InputError) as e:
        stage_files([("bomb.zip", data)])
    assert e.value.key == "import.zip_ratio" and "100:1" in e.value.message("en")
    assert time.perf_counter() - t < 2
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing left, nothing extracted


def test_the_ratio_is_checked_on_the_bytes_produced_when_the_directory_lies(tmp_path):
    data = bytearray(_zeros_zip(30))
    cd = data.rfind(b"PK\x01\x02")
    # claim a compressed size 1000× the real one in the central directory: the directory check passes
    import struct

    real = struct.unpack_from("<I", data, cd + 20)[0]
    struct.pack_into("<I", data, cd + 20, real * 1000)
    with pytest.raises(InputError) as e:
        stage_files([("liar.zip", bytes(data))])
    assert e.value.key in ("import.zip_ratio", "import.bad_zip")


def test_an_ordinary_zip_of_a_shapefile_like_ratio_passes():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.geojson", _fc(50))
    with stage_files([("ok.zip", buf.getvalue())]) as up:
        assert up.layer_names() == ["a"]


# ------------------------------------------------------------------ GeoJSON nesting
@pytest.mark.parametrize("depth", [900, 200_000])
def test_deeply_nested_geojson_is_refused_with_a_message(tmp_path, depth):
    body = ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"a": ' + "[" * depth
            + "]" * depth + '}, "geometry": {"type": "Polygon", "coordinates": ' + "[" * depth + "]" * depth + "}}]}")
    with pytest.raises(InputError) as e:
        with stage_files([("deep.geojson", body.encode())]) as up:
            read_layer(up, up.layer())
    assert e.value.key == "import.too_deep"


def test_deep_geojson_on_the_command_line_exits_2_without_a_traceback(tmp_path, demo_where):
    src = tmp_path / "deep.geojson"
    src.write_text('{"type": "FeatureCollection", "features": [' + "[" * 100_000 + "]" * 100_000 + "]}")
    out = subprocess.run([sys.executable, "-m", "gis.cli", "--store", demo_where, "--as", "admin", "import", str(src),
                          "--kind", "village", "--dry-run"], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env=dict(os.environ, RENEWAL_PASSWORD="renewal-admin"))
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "嵌套" in out.stderr


# ------------------------------------------------------------------ KML
def test_kml_doctype_and_network_links_are_found_anywhere_in_the_file():
    pad = b"<!-- " + b"x" * (200 * 1024) + b" -->"
    head = b'<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>' + pad
    with pytest.raises(InputError) as e:
        stage_files([("a.kml", head + b'<!DOCTYPE x [<!ENTITY a "b">]></Document></kml>')])
    assert e.value.key == "import.kml_doctype"
    # a mark split across the 1 MB read blocks is found too
    split = head + b"y" * (MB - len(head) - 5) + b"<NetworkLink><Link><href>http://x/</href></Link></NetworkLink>"
    with pytest.raises(InputError) as e:
        stage_files([("b.kml", split + b"</Document></kml>")])
    assert e.value.key == "import.kml_network"


def test_an_unreadable_kml_says_why_in_words_not_placeholders():
    with pytest.raises(InputError) as e:
        stage_files([("c.kml", b"<kml><Document><Placemark>")])  # cut short: GDAL cannot read it
    for lang in ("zh", "en"):
        assert "{" not in e.value.message(lang) and "c.kml" in e.value.message(lang)


# ------------------------------------------------------------------ GeoPackage virtual tables
@pytest.mark.parametrize("sql", [
    'CREATE VIRTUAL TABLE sneaky USING fts4(a, "USING rtree")',
    "CREATE VIRTUAL TABLE sneaky /* USING rtree */ USING fts5(a)",
    "CREATE VIRTUAL TABLE [USING rtree] USING fts5(a)",
])
def test_virtual_tables_are_parsed_not_searched(any_store, tmp_path, sql):
    src = tmp_path / "v.gpkg"
    export_gpkg(any_store, src)
    with sqlite3.connect(src) as con:
        con.execute(sql)
    with pytest.raises(InputError) as e:
        stage_path(src)
    assert e.value.key == "import.gpkg_virtual"


def test_a_geopackage_with_only_its_rtree_passes(any_store, tmp_path):
    src = tmp_path / "ok.gpkg"
    export_gpkg(any_store, src)
    with stage_path(src) as up:
        assert "parcels" in up.layer_names()


# ------------------------------------------------------------------ stale staged copies
def test_staged_copies_of_a_killed_import_are_removed_by_the_next(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    script = ("import os, time, sys; sys.path.insert(0, %r)\n"
              "from gis.io.uploads import stage_files\n"
              "up = stage_files([('a.geojson', %r)]); print(up.folder, flush=True); time.sleep(60)") % (str(ROOT), _fc())
    env = dict(os.environ, TMPDIR=str(tmp_path))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    folder = Path(child.stdout.readline().strip())
    assert folder.is_dir() and folder.parent == tmp_path
    child.kill()
    child.wait()
    old = tmp_path / "renewal-import-legacy"  # a folder of before (no pid in its name), a day old
    old.mkdir()
    os.utime(old, (time.time() - 86400, time.time() - 86400))
    with stage_files([("b.geojson", _fc())]) as live:
        assert not folder.exists() and not old.exists()
        assert live.folder.exists()
        assert uploads.remove_stale_uploads() == []  # a live upload of this process stays


# ------------------------------------------------------------------ a full disk
def test_a_full_disk_says_disk_full(tmp_path, monkeypatch):
    """The staging folder's file points at /dev/full, whose every write fails with ENOSPC."""
    folder = tmp_path / "stage"
    folder.mkdir()
    os.symlink("/dev/full", folder / "u0.geojson")
    monkeypatch.setattr(uploads.tempfile, "mkdtemp", lambda prefix="": str(folder))
    with pytest.raises(InputError) as e:
        stage_files([("a.geojson", _fc())])
    assert e.value.key == "import.disk_full"
    assert "磁盘已满" in e.value.message("zh") and "Disk full" in e.value.message("en")


# ------------------------------------------------------------------ heavy imports in a child
def test_an_import_checked_in_a_child_gives_the_same_plan(any_store):
    with stage_files([("p.geojson", _fc(3))]) as up:
        opts = ImportOptions(kind="village")
        here = prepare_import(any_store, up, opts)
        there = isolation.plan_import(any_store, up, opts, isolate=True)
        assert there.report == here.report
        assert list(there.parcels["code"]) == list(here.parcels["code"])
        assert isolation.layer_summary(up, None, None, isolate=True) == (["code"], [])


def test_a_child_over_its_memory_cap_is_stopped_with_a_message(any_store):
    with stage_files([("p.geojson", _fc(3))]) as up:
        with pytest.raises(InputError) as e:
            isolation.plan_import(any_store, up, ImportOptions(kind="village"), isolate=True, memory_limit=200 * MB)
    assert e.value.key == "import.too_much_memory" and "200 MB" in e.value.message("en")


def test_a_child_past_its_time_limit_is_killed(any_store):
    with stage_files([("p.geojson", _fc(3))]) as up:
        t = time.perf_counter()
        with pytest.raises(InputError) as e:
            isolation.plan_import(any_store, up, ImportOptions(kind="village"), isolate=True, time_limit_s=0.05)
    assert e.value.key == "import.too_slow" and time.perf_counter() - t < 10


def test_errors_in_the_child_arrive_as_themselves(any_store):
    with stage_files([("p.geojson", _fc(3))]) as up:
        with pytest.raises(InputError) as e:
            isolation.plan_import(any_store, up, ImportOptions(kind="no-such-kind"), isolate=True)
    assert e.value.key == prepare_import_error_key(any_store, up_bytes=_fc(3))


def prepare_import_error_key(store, up_bytes) -> str:
    with stage_files([("p.geojson", up_bytes)]) as up:
        with pytest.raises(InputError) as e:
            prepare_import(store, up, ImportOptions(kind="no-such-kind"))
    return e.value.key
