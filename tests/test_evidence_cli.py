"""Evidence on the command line (issue 17): renewal attach / attachments / attachment get|withdraw and
renewal advance --evidence, end to end on both back ends."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from test_cli import run, run_as

from gis.demo.evidence import bomb_png, sample_pdf, sample_photo
from gis.store.open import open_store_at


@pytest.fixture
def files(tmp_path):
    photo = tmp_path / "现场.jpg"
    photo.write_bytes(sample_photo(121.3009, 37.4004, dt.datetime(2026, 5, 1, 10, 30), 135.5, serial="SN-9"))
    minutes = tmp_path / "minutes.pdf"
    minutes.write_bytes(sample_pdf("Villagers' vote minutes"))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png())
    fake = tmp_path / "fake.pdf"
    fake.write_bytes(photo.read_bytes())
    return {"photo": photo, "minutes": minutes, "bomb": bomb, "fake": fake}


@pytest.fixture
def store_file(tiny_store):
    return tiny_store.path or tiny_store.url


def test_attach_list_get_withdraw(store_file, files, tmp_path):
    out = run("attach", "V01-001", str(files["photo"]), str(files["minutes"]), "--caption", "拆除前",
              "--by", "张伟", "--json", store=store_file)
    assert out.returncode == 0, out.stderr
    photo, doc = json.loads(out.stdout)
    assert (photo["kind"], photo["taken_at"], photo["lon"], photo["lat"]) == (
        "photo", "2026-05-01T10:30:00+08:00", pytest.approx(121.3009, abs=1e-5), pytest.approx(37.4004, abs=1e-5))
    assert doc["kind"] == "document" and doc["taken_at"] is None and len(doc["sha256"]) == 64
    listed = json.loads(run("attachments", "V01-001", "--json", store=store_file).stdout)
    assert [a["id"] for a in listed] == [photo["id"], doc["id"]]
    got = tmp_path / "got.jpg"
    assert run("attachment", "get", str(photo["id"]), "-o", str(got), store=store_file).returncode == 0
    assert got.read_bytes() == files["photo"].read_bytes()
    clean = tmp_path / "clean.jpg"
    assert run("attachment", "get", str(photo["id"]), "-o", str(clean), "--strip-personal",
               store=store_file).returncode == 0
    assert b"SN-9" in got.read_bytes() and b"SN-9" not in clean.read_bytes()
    out = run("attachment", "withdraw", str(doc["id"]), "--reason", "传错文件", "--by", "张伟", store=store_file)
    assert out.returncode == 0 and json.loads(out.stdout)["withdrawn_reason"] == "传错文件"
    assert [a["id"] for a in json.loads(run("attachments", "V01-001", "--json", store=store_file).stdout)] == \
        [photo["id"]]
    assert len(json.loads(run("attachments", "V01-001", "--withdrawn", "--json", store=store_file).stdout)) == 2


@pytest.mark.parametrize("bad", ["bomb", "fake", "missing"])
def test_bad_files_exit_2_in_both_languages_and_write_nothing(store_file, files, bad, tmp_path):
    path = files.get(bad, tmp_path / "nope.jpg")
    v = open_store_at(str(store_file)).data_version()
    out = run("attach", "V01-001", str(files["photo"]), str(path), "--by", "张伟", "--json", store=store_file)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "错误 Error:" in out.stderr and " / " in out.stderr  # Chinese / English
    s = open_store_at(str(store_file))
    assert s.data_version() == v and s.attachments(include_withdrawn=True) == []


def test_advance_to_the_vote_needs_minutes(store_file, files):
    for stage, date in (("listed", "2025-01-10"), ("baseline", "2025-01-20"), ("plan", "2025-01-30")):
        assert run("advance", "V01-002", "--to", stage, "--date", date, "--by", "张伟",
                   store=store_file).returncode == 0
    out = run("advance", "V01-002", "--to", "vote", "--share", "0.9", "--date", "2025-02-01", "--by", "张伟",
              store=store_file)
    assert out.returncode == 2 and "证明材料" in out.stderr and "Evidence required" in out.stderr
    for extra in (["--evidence", "nope.pdf"], ["V01-001", "--evidence", str(files["minutes"])]):  # missing; 2 parcels
        out = run("advance", "V01-002", *extra, "--to", "vote", "--share", "0.9", "--date", "2025-02-01",
                  "--by", "张伟", store=store_file)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    out = run("advance", "V01-002", "--to", "vote", "--share", "0.9", "--date", "2025-02-01", "--by", "张伟",
              "--evidence", str(files["minutes"]), "--evidence", str(files["photo"]), store=store_file)
    assert out.returncode == 0, out.stderr
    event = json.loads(out.stdout)["event"]
    atts = json.loads(run("attachments", "V01-002", "--event", str(event["id"]), "--json", store=store_file).stdout)
    assert [(a["kind"], a["event_id"]) for a in atts] == [("document", event["id"]), ("photo", event["id"])]
    assert open_store_at(str(store_file)).parcel("V01-002")["stage"] == "vote"


def test_restricted_documents_need_a_role_allowed(demo_where, tmp_path):
    s = open_store_at(demo_where)
    secret = next(a for a in s.attachments() if a.restricted)
    out = tmp_path / "a.pdf"
    assert run("attachment", "get", str(secret.id), "-o", str(out), store=demo_where).returncode == 3
    assert run_as("viewer", "attachment", "get", str(secret.id), "-o", str(out), store=demo_where).returncode == 3
    assert not out.exists()
    assert run_as("leader", "attachment", "get", str(secret.id), "-o", str(out), store=demo_where).returncode == 0
    assert out.read_bytes().startswith(b"%PDF")
    listed = json.loads(run("attachments", secret.target_code, "--json", store=demo_where).stdout)
    assert secret.id not in [a["id"] for a in listed]
    # viewers may not attach
    photo = tmp_path / "p.jpg"
    photo.write_bytes(sample_photo(size=(64, 48)))
    assert run_as("viewer", "attach", secret.target_code, str(photo), store=demo_where).returncode == 3
