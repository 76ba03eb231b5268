"""Where commands may write their output, the numbers options take, templates by extension, global options
after the command (the CLI review of 2026-12-02, items 1, 2, 3, 14, 21, 23, 24).

Most cases run the command line in this process (``main(argv)``: the same parser and error handling as
``renewal``, without a Python start per case); a few run it as a subprocess, as a user would."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os

import openpyxl
import pytest
from test_cli import DEMO_PASSWORDS, run

from gis.base.errors import InputError
from gis.base.fileio import check_output
from gis.cli.main import main
from gis.demo.evidence import sample_photo
from gis.io import plans_io, projects_io
from gis.store.open import open_store_at


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cli(*argv, store=…, env=…)`` → (exit code, stdout, stderr) of ``renewal`` run in this process."""
    for k in ("RENEWAL_LANG", "RENEWAL_PASSWORD", "RENEWAL_TOKEN", "RENEWAL_USER"):
        monkeypatch.delenv(k, raising=False)

    def call(*argv, store=None, env=None):
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        capsys.readouterr()
        try:
            rc = main((["--store", str(store)] if store else []) + [str(a) for a in argv])
        except SystemExit as e:  # argparse's usage errors
            rc = e.code
        finally:
            for k in env or {}:
                monkeypatch.delenv(k, raising=False)
        out = capsys.readouterr()
        return rc, out.out, out.err

    return call


@pytest.fixture
def where(tiny_store):
    """The tiny store on each back end (its path or URL), with one photo attached to V01-001."""
    a = tiny_store.add_attachment("V01-001", sample_photo(121.3, 37.4, dt.datetime(2026, 5, 1, 10)), "现场.jpg",
                                  "张伟")
    tiny_store.photo_id = a.id
    return tiny_store


def _where(store) -> str:
    return store.path or store.url


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


#: every command that writes a file, with ``{out}`` for its output
WRITERS = {
    "export": ["export", "-o", "{out}"],
    "export csv": ["export", "--format", "csv", "-o", "{out}"],
    "export xlsx": ["export", "--format", "xlsx", "-o", "{out}"],
    "attachment get": ["attachment", "get", "{photo}", "-o", "{out}"],
    "attachment zip": ["attachment", "zip", "V01-001", "-o", "{out}"],
    "plan template": ["plan", "template", "-o", "{out}"],
    "project template": ["project", "template", "-o", "{out}"],
    "brief": ["brief", "V01-001", "--no-raster", "-o", "{out}"],
    "atlas": ["atlas", "--village", "V01", "--no-raster", "--quiet", "-o", "{out}"],
    "atlas png": ["atlas", "--village", "V01", "--no-raster", "--quiet", "-o", "{tmp}/a.pdf", "--png-zip", "{out}"],
    "report": ["report", "--since", "2025-01-01", "--until", "2025-12-31", "--quiet", "-o", "{out}"],
    "backup": ["backup", "-o", "{out}"],
    "audit csv": ["audit", "--csv", "{out}"],
    "demo": ["demo", "--out", "{out}"],
    "demo raster": ["demo", "--out", "{tmp}/demo.gpkg", "--raster", "{out}"],
}
#: a file name each writer accepts
GOOD_NAME = {"export": "x.gpkg", "export csv": "x.csv", "export xlsx": "x.xlsx", "attachment get": "x.jpg",
             "attachment zip": "x.zip", "plan template": "x.xlsx", "project template": "x.csv", "brief": "x.pdf",
             "atlas": "x.pdf", "atlas png": "x.zip", "report": "x.xlsx", "backup": "x.gpkg", "audit csv": "x.csv",
             "demo": "x.gpkg", "demo raster": "x.tif"}


def _argv(name, out, store, tmp_path):
    return [a.format(out=out, photo=getattr(store, "photo_id", 1), tmp=tmp_path) for a in WRITERS[name]]


@pytest.mark.parametrize("name", list(WRITERS))
def test_no_command_writes_over_the_live_store(name, tiny_gpkg, cli, tmp_path):
    """Item 1: the GeoPackage in use (and the files SQLite keeps beside it) is never an output, by any
    spelling of its name; exit 2, the store untouched."""
    store = tiny_gpkg
    path = store.path
    store.add_attachment("V01-001", sample_photo(121.3, 37.4), "a.jpg", "张伟")
    n = len(store.parcels(geometry=False))
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "link.gpkg").symlink_to(path)
    for target in (path, other / "link.gpkg", f"{path.parent}/./{path.name}", f"{path}-wal", f"{path}-shm"):
        before = _sha(path)
        rc, out, err = cli(*_argv(name, target, store, tmp_path), store=path)
        assert rc == 2, (target, err)
        assert "正在使用的数据文件" in err and "store in use" in err, err
        assert _sha(path) == before and len(open_store_at(str(path)).parcels(geometry=False)) == n
        assert not os.path.exists(f"{path}-wal.part") and out == ""


@pytest.mark.parametrize("name", list(WRITERS))
def test_bad_output_places_are_refused_before_anything_is_written(name, where, cli, tmp_path):
    """Item 2/21: a folder, a missing folder, a path under a file, an unwritable place: exit 2 with the reason
    in both languages, no traceback, nothing left behind — on both back ends."""
    store = _where(where)
    good = GOOD_NAME[name]
    tmp_path = tmp_path / "w"  # beside the GeoPackage store
    tmp_path.mkdir()
    folder = tmp_path / "out"
    folder.mkdir()
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    cases = {
        str(folder): ("是一个文件夹", "is a folder"),
        str(folder) + "/": ("是一个文件夹", "is a folder"),
        str(tmp_path / "nope" / good): ("不存在", "does not exist"),
        str(a_file / good): ("是文件，不是文件夹", "is a file, not a folder"),
        "/proc/" + good: ("不可写", "not writable"),
    }
    env = {"RENEWAL_PASSWORD": DEMO_PASSWORDS["admin"]} if name in ("backup", "audit csv") else None
    for target, (zh, en) in cases.items():
        rc, out, err = cli(*_argv(name, target, where, tmp_path), store=store, env=env)
        assert rc == 2 and zh in err and en in err, (target, err)
        assert "Traceback" not in err and out == ""
    assert sorted(p.name for p in folder.iterdir()) == [] and not (tmp_path / "nope").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "plain.txt"]


@pytest.mark.parametrize("name", ["export", "export csv", "attachment get", "attachment zip", "plan template",
                                  "project template", "report"])
def test_good_output_paths_work_on_both_back_ends(name, where, cli, tmp_path):
    """The checks refuse only what they should: a PostGIS store has no file, and every output lands."""
    tmp_path = tmp_path / "w"
    tmp_path.mkdir()
    out = tmp_path / GOOD_NAME[name]
    rc, _, err = cli(*_argv(name, out, where, tmp_path), store=_where(where))
    assert rc == 0, err
    assert out.stat().st_size > 0 and [p.name for p in tmp_path.iterdir()] == [out.name]


def test_an_existing_output_file_is_replaced_atomically(where, cli, tmp_path):
    tmp_path = tmp_path / "w"
    tmp_path.mkdir()
    out = tmp_path / "x.csv"
    out.write_text("old")
    assert cli("export", "-o", out, store=_where(where))[0] == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbf") and [p.name for p in tmp_path.iterdir()] == ["x.csv"]


# ------------------------------------------------------------------ the shared check itself
def test_check_output_by_identity(tmp_path):
    store = tmp_path / "s.gpkg"
    store.write_bytes(b"x")
    os.link(store, tmp_path / "hard.gpkg")
    (tmp_path / "sub").mkdir()
    for same in (store, tmp_path / "hard.gpkg", tmp_path / "sub" / ".." / "s.gpkg", f"{store}-journal"):
        with pytest.raises(InputError) as e:
            check_output(same, protected=(store,))
        assert e.value.key.startswith("outpath.onto_store")
    assert check_output(tmp_path / "t.gpkg", protected=(store,)) == tmp_path / "t.gpkg"
    assert check_output(tmp_path / "t.gpkg", protected=()) == tmp_path / "t.gpkg"  # PostGIS: no file
    with pytest.raises(InputError) as e:
        check_output(tmp_path / "t.txt", suffixes=(".xlsx", ".csv"))
    assert ".xlsx, .csv" in e.value.message("en")
    with pytest.raises(InputError):
        check_output("  ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.gpkg", "s.gpkg", "sub"]  # the probe is gone


def test_refusals_in_a_subprocess_have_no_traceback(tmp_path):
    """As a user runs it (the review's exact commands, on a demo-like store)."""
    store = tmp_path / "t.gpkg"
    from tests.conftest import write_tiny_store

    write_tiny_store(store)
    (tmp_path / "out").mkdir()
    for argv in (["export", "-o", store], ["export", "-o", tmp_path / "out"], ["export", "-o", f"{store}/x.csv"],
                 ["plan", "template", "-o", store], ["project", "template", "-o", tmp_path / "out/"]):
        res = run(*map(str, argv), store=store)
        assert res.returncode == 2 and "Traceback" not in res.stderr and "错误 Error" in res.stderr, res.stderr
    assert open_store_at(str(store)).parcels(geometry=False)["code"].tolist()


# ------------------------------------------------------------------ numbers (item 3)
@pytest.mark.parametrize("argv", [
    ["indicators", "--year", "-5"], ["indicators", "--year", "99999"], ["indicators", "--year", "abc"],
    ["project", "template", "--year", "-5", "-o", "p.xlsx"], ["project", "import", "p.xlsx", "--year", "0"],
    ["brief", "V01-001", "--dpi", "0", "-o", "x.png"], ["brief", "--project", "XM-016", "--dpi", "-5", "-o", "x.png"],
    ["brief", "V01-001", "--dpi", "100000", "-o", "x.png"], ["atlas", "--villages", "--jobs", "0", "-o", "a.pdf"],
    ["atlas", "--villages", "--dpi", "1e9", "-o", "a.pdf"], ["serve", "--port", "70000"],
    ["demo", "--seed", "-1"], ["demo", "--cadastre", "0"], ["dashboard", "--latest", "-3"],
    ["attachments", "V01-001", "--event", "0"], ["advance", "V01-001", "--to", "x", "--expect-version", "-1"],
])
def test_out_of_range_numbers_exit_2_in_both_languages(argv, cli, tmp_path):
    rc, out, err = cli(*argv, store=tmp_path / "never.gpkg")
    assert rc == 2 and "命令参数有误" in err and "invalid arguments" in err, err
    assert ("须在" in err and "must be between" in err) or ("须为整数" in err and "whole number" in err)
    assert out == "" and not (tmp_path / "never.gpkg").exists()


def test_numbers_at_the_edges_are_accepted(cli, tmp_path):
    out = tmp_path / "p.xlsx"
    assert cli("project", "template", "--year", "2100", "-o", out, store=tmp_path / "s.gpkg")[0] == 0
    wb = openpyxl.load_workbook(out)
    assert any("2100年1月" in str(c.value) for c in wb.worksheets[0][1])


# ------------------------------------------------------------------ templates and export formats (item 14)
def _plain(value):
    """Cells as a CSV has them: text (a date as YYYY-MM-DD, 3000.0 as 3000, nothing as "")."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def test_templates_follow_the_extension(where, cli, tmp_path):
    store = _where(where)
    for what, reader in (("plan", plans_io.read_plan_file), ("project", projects_io.read_project_file)):
        x, c = tmp_path / f"{what}.xlsx", tmp_path / f"{what}.csv"
        assert cli(what, "template", "-o", x, store=store)[0] == 0
        assert cli(what, "template", "-o", c, store=store)[0] == 0
        assert x.read_bytes()[:2] == b"PK" and openpyxl.load_workbook(x).worksheets[0].max_row > 1
        data = c.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf") and b"PK" not in data[:4]
        header = data.decode("utf-8-sig").splitlines()[0]
        assert header == ",".join(str(v.value) for v in openpyxl.load_workbook(x).worksheets[0][1])
        assert _plain(reader(c)) == _plain(reader(x))  # the CSV holds the same sheet to fill
        for bad in ("p.txt", "p.xls", "p"):
            rc, _, err = cli(what, "template", "-o", tmp_path / bad, store=store)
            assert rc == 2 and ".xlsx, .csv" in err and not (tmp_path / bad).exists()


def test_export_format_and_extension_must_agree(where, cli, tmp_path):
    store = _where(where)
    rc, _, err = cli("export", "--format", "csv", "-o", tmp_path / "x.xlsx", store=store)
    assert rc == 2 and "与文件名" in err and "does not match" in err and not (tmp_path / "x.xlsx").exists()
    rc, _, err = cli("export", "-o", tmp_path / "x.txt", store=store)
    assert rc == 2 and ".gpkg, .geojson, .zip, .xlsx, .csv" in err
    assert cli("export", "--format", "shp", "-o", tmp_path / "s.zip", store=store)[0] == 0
    assert cli("export", "-o", tmp_path / "t.xlsx", store=store)[0] == 0
    assert openpyxl.load_workbook(io.BytesIO((tmp_path / "t.xlsx").read_bytes())).worksheets
    assert cli("export", "--format", "csv", "-o", tmp_path / "T.CSV", store=store)[0] == 0
    assert (tmp_path / "T.CSV").read_bytes().startswith(b"\xef\xbb\xbf")


# ------------------------------------------------------------------ inputs that are folders (item 21)
def test_a_folder_given_as_a_file_to_attach_says_so(where, cli, tmp_path):
    folder = tmp_path / "dir.jpg"
    folder.mkdir()
    for argv in (["attach", "V01-001", folder, "--by", "张伟"],
                 ["advance", "V01-002", "--to", "listed", "--by", "张伟", "--evidence", folder]):
        rc, _, err = cli(*argv, store=_where(where))
        assert rc == 2 and "是文件夹，不是文件" in err and "is a folder, not a file" in err, err
    assert len(where.attachments("V01-001")) == 1


# ------------------------------------------------------------------ exit codes and silent drops (item 23)
def test_withdrawing_twice_is_a_conflict(where, cli):
    store = _where(where)
    argv = ("attachment", "withdraw", where.photo_id, "--reason", "拍错", "--by", "张伟")
    assert cli(*argv, store=store)[0] == 0
    rc, _, err = cli(*argv, store=store)
    assert rc == 4 and "错误 Error" in err


def test_village_atlas_with_photos_is_refused(where, cli, tmp_path):
    rc, _, err = cli("atlas", "--villages", "--photos", "-o", tmp_path / "a.pdf", store=_where(where))
    assert rc == 2 and "--photos" in err and "--villages" in err and not (tmp_path / "a.pdf").exists()


@pytest.mark.slow
def test_attachments_say_how_many_restricted_are_hidden(demo_where, cli):
    s = open_store_at(demo_where)
    every = s.attachments("V01-009")
    restricted = [a for a in every if a.restricted]
    assert restricted and len(restricted) < len(every)
    rc, out, err = cli("attachments", "V01-009", "--json", store=demo_where)
    assert rc == 0 and len(json.loads(out)) == len(every) - len(restricted)
    assert f"另有 {len(restricted)} 份受限材料未列出" in err and "restricted document(s) not listed" in err
    rc, out, err = cli("--as", "admin", "attachments", "V01-009", "--json", store=demo_where,
                       env={"RENEWAL_PASSWORD": DEMO_PASSWORDS["admin"]})
    assert rc == 0 and len(json.loads(out)) == len(every) and err == ""


# ------------------------------------------------------------------ global options after the command (item 24)
def test_global_options_after_the_command(where, cli, tmp_path):
    store = _where(where)
    zh = json.loads(cli("layers", "--json", store=store)[1])
    en = json.loads(cli("layers", "--json", "--lang", "en", store=store)[1])
    assert en[0]["label"] == en[0]["label_en"] != zh[0]["label"] == zh[0]["label_zh"]
    assert json.loads(cli("--lang", "en", "layers", "--json", store=store)[1]) == en  # before it: as ever
    assert json.loads(cli("layers", "--json", "--store", store, "--lang", "en")[1]) == en  # --store after it too
    assert json.loads(cli("--lang", "en", "layers", "--json", "--lang", "zh", store=store)[1]) == zh  # last wins
    rc, out, err = cli("plan", "template", "-o", tmp_path / "p.xlsx", "--lang", "en", store=store)
    assert rc == 0 and openpyxl.load_workbook(tmp_path / "p.xlsx").worksheets[0]["A1"].value == "object"


def test_a_listing_piped_into_head_ends_quietly(tmp_path):
    """``renewal parcels | head -1``: the reader closes the pipe early; no BrokenPipeError traceback."""
    import subprocess
    import sys

    from tests.conftest import write_tiny_store

    store = tmp_path / "t.gpkg"
    write_tiny_store(store)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENEWAL_")}
    cmd = f"'{sys.executable}' -m gis.cli --store '{store}' parcels | head -c 10"
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert len(res.stdout) == 10
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr
