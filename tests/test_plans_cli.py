"""`renewal plan / status / followup / digest` run as a planner would (a subprocess), on both back ends."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from gis.base.clock import office_today
from gis.store import open_store_at

ROOT = Path(__file__).resolve().parent.parent


def run(*args, store=None, env=None):
    e = dict(os.environ)
    e.pop("RENEWAL_LANG", None)
    for k in ("RENEWAL_DIGEST_WEBHOOK", "RENEWAL_PASSWORD", "RENEWAL_TOKEN", "RENEWAL_USER"):
        e.pop(k, None)
    if env:
        e.update(env)
    cmd = [sys.executable, "-m", "gis.cli"] + (["--store", str(store)] if store else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=e, timeout=120)


@pytest.fixture
def store_file(tiny_store):
    return tiny_store.path or tiny_store.url


def _sheet(path: Path, rows) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.append(["对象编号", "目标阶段", "计划完成日期", "责任单位", "备注"])
    for r in rows:
        ws.append(list(r))
    wb.save(path)
    return path


def test_template_speaks_the_office_terms(store_file, tmp_path):
    out = run("plan", "template", "-o", str(tmp_path / "plan.xlsx"), store=store_file)
    assert out.returncode == 0, out.stderr
    wb = load_workbook(tmp_path / "plan.xlsx")
    assert [c.value for c in wb.worksheets[0][1]] == ["对象编号", "目标阶段", "计划完成日期", "责任单位", "备注"]
    stages = {r[1] for r in wb.worksheets[1].iter_rows(values_only=True)}
    assert {"签约", "两规批准", "权属核查"} <= stages


def test_import_is_all_or_nothing_and_names_the_bad_row(store_file, tmp_path):
    bad = _sheet(tmp_path / "bad.xlsx", [("V01-001", "意愿征询", dt.date(2026, 5, 31), "", ""),
                                         ("V01-002", "入库（标图建库）", "2026-02-30", "", ""),
                                         ("V01", "签约", "2026-12-31", "凤凰街道办事处", "整村")])
    out = run("plan", "import", str(bad), "--json", "--by", "王芳", store=store_file)
    assert out.returncode == 2
    res = json.loads(out.stdout)
    assert res["added"] == 0 and [r["row"] for r in res["rejected"]] == [3]
    assert "第 3 行" in out.stderr or "rows 3" in out.stderr
    assert len(open_store_at(str(store_file)).plan_targets()) == 0
    good = _sheet(tmp_path / "good.xlsx", [("V01-001", "意愿征询", dt.date(2026, 5, 31), "", ""),
                                           ("V01", "签约", "2026-12-31", "凤凰街道办事处", "整村")])
    out = run("plan", "import", str(good), "--baseline", "commitment", "--json", "--by", "王芳", store=store_file)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) | {"data_version": 0} == {"baseline": "commitment", "added": 2, "changed": 0,
                                                            "unchanged": 0, "skipped_examples": 0, "rejected": [],
                                                            "data_version": 0}
    listed = json.loads(run("plan", "list", "--village", "V01", "--json", store=store_file).stdout)
    assert {(r["object"], r["stage"], r["due_date"]) for r in listed} == {("V01-001", "survey", "2026-05-31"),
                                                                         ("V01", "signing", "2026-12-31")}


def test_set_then_status_then_advance(store_file):
    today = office_today()
    due = (today - dt.timedelta(days=2)).isoformat()
    out = run("plan", "set", "V01-002", "--stage", "listed", "--due", due, "--by", "王芳", store=store_file)
    assert out.returncode == 0, out.stderr
    rows = json.loads(run("status", "--json", store=store_file).stdout)
    target = [r for r in rows if r["object"] == "V01-002" and r["status"] != "stalled"]
    assert [(r["stage"], r["due"], r["status"], r["days_late"], r["unit"]) for r in target] == [
        ("listed", due, "overdue", 2, "凤凰街道办事处")]
    stalled = [r for r in rows if r["status"] == "stalled"]
    assert stalled and all(r["days_in_stage"] > 0 for r in stalled)
    arrived = (today - dt.timedelta(days=1)).isoformat()
    out = run("advance", "V01-002", "--to", "listed", "--date", arrived, "--by", "王芳", store=store_file)
    assert out.returncode == 0, out.stderr
    rows = json.loads(run("status", "--village", "V01", "--json", store=store_file).stdout)
    assert [(r["status"], r["days_late"], r["reached_on"]) for r in rows
            if r["object"] == "V01-002" and r["status"] != "stalled"] == [("done_late", 1, arrived)]
    past = json.loads(run("status", "--as-of", (today - dt.timedelta(days=4)).isoformat(), "--json",
                          store=store_file).stdout)
    assert [r["status"] for r in past if r["object"] == "V01-002" and r["status"] != "stalled"] == ["due_soon"]
    for args in (("plan", "set", "V01-002", "--stage", "nonsense", "--due", due),
                 ("plan", "set", "V01-002", "--stage", "listed", "--due", "tomorrow"),
                 ("status", "--as-of", "2026-02-30")):
        out = run(*args, "--by", "王芳", store=store_file) if args[0] == "plan" else run(*args, store=store_file)
        assert out.returncode == 2 and "错误 Error" in out.stderr and "Traceback" not in out.stderr


def test_followup_loop_exit_codes(store_file):
    s = open_store_at(str(store_file))
    pw = "office-secret"
    s.add_user("admin", pw, "admin", "bootstrap")
    for name, role in (("leader", "leader"), ("ed_v01", "editor"), ("ed_north", "editor")):
        s.add_user(name, pw, role, "admin")
    s.assign("ed_v01", "village", "V01", "admin")
    s.assign("ed_north", "zone", "north", "admin")
    act = (lambda who, *args: run("--as", who, *args, store=store_file, env={"RENEWAL_PASSWORD": pw}))
    due = (office_today() + dt.timedelta(days=1)).isoformat()
    out = act("leader", "followup", "add", "--on", "V01-003", "--unit", "凤凰街道办事处", "--due", due,
              "--text", "签约滞后，请报送措施")
    assert out.returncode == 0, out.stderr
    fid = json.loads(out.stdout)["id"]
    assert act("ed_v01", "followup", "add", "--on", "V01-003", "--due", due, "--text", "x").returncode == 3
    later = (office_today() + dt.timedelta(days=3)).isoformat()  # past its due date, not replied: overdue
    listed = json.loads(run("followup", "list", "--open", "--as-of", later, "--json", store=store_file).stdout)
    assert [(r["id"], r["on"], r["unit"], r["due"], r["state"], r["overdue"]) for r in listed] == [
        (fid, "V01-003", "凤凰街道办事处", due, "issued", True)]  # reading: no account
    out = act("ed_north", "followup", "reply", str(fid), "--text", "不归我管")
    assert out.returncode == 3 and "ed_north" in out.stderr
    assert act("ed_v01", "followup", "reply", str(fid), "--text", "已部署").returncode == 0
    assert act("leader", "followup", "close", str(fid)).returncode == 0
    assert act("leader", "followup", "return", str(fid), "--text", "again").returncode == 4
    assert act("leader", "followup", "reply", "999", "--text", "x").returncode == 2
    assert json.loads(run("followup", "list", "--open", "--json", store=store_file).stdout) == []
    trail = [(a["actor"], a["action"]) for _, a in s.audit(target="V01-003").iloc[::-1].iterrows()
             if a["action"].startswith("followup")]
    assert [x for x in trail if x[1] != "followup_return"] == [
        ("leader", "followup_issue"), ("ed_v01", "followup_issue"), ("ed_north", "followup_reply"),
        ("ed_v01", "followup_reply"), ("leader", "followup_close")]


class _Robot(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        answer = b'{"errcode": 0, "errmsg": "ok"}' if self.path == "/ok" else b'{"errcode": 93000, "errmsg": "bad key"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def test_digest_dry_run_and_webhook(store_file):
    today = office_today()
    run("plan", "set", "V01-002", "--stage", "listed", "--due", (today - dt.timedelta(days=4)).isoformat(),
        "--by", "王芳", store=store_file)
    run("plan", "set", "HSR-001", "--stage", "plans_approved", "--due", (today + dt.timedelta(days=3)).isoformat(),
        "--by", "王芳", store=store_file)
    out = run("digest", "--dry-run", store=store_file)
    assert out.returncode == 0, out.stderr
    assert "逾期 1 项，临期 1 项" in out.stdout and "凤凰街道办事处" in out.stdout and "逾期 4 天" in out.stdout
    assert "区城市更新集团" in out.stdout
    assert run("digest", store=store_file).returncode == 2  # off by default: no webhook, nothing sent
    server = HTTPServer(("127.0.0.1", 0), _Robot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        out = run("digest", store=store_file, env={"RENEWAL_DIGEST_WEBHOOK": url + "/ok"})
        assert out.returncode == 0, out.stderr
        path, ctype, body = _Robot.received[-1]
        assert path == "/ok" and ctype.startswith("application/json")
        assert body["msgtype"] == "markdown" and "逾期 4 天" in body["markdown"]["content"]
        out = run("digest", store=store_file, env={"RENEWAL_DIGEST_WEBHOOK": url + "/refuse"})
        assert out.returncode == 2 and "93000" in out.stderr
    finally:
        server.shutdown()
