"""Stage names and shares as users type them (review items 17, 19, 21), on both back ends: a stage's
Chinese or English label names it wherever a key does (one resolver, gis/model/pipelines.py); a share is a
fraction 0–1 or a percentage with its sign, anything else refused with a message saying so; a folder
given as a file is called a folder."""
from __future__ import annotations

import datetime as dt
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gis.base.errors import InputError, StageTransitionError
from gis.model.pipelines import NOT_STARTED, parse_share

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 6, 1)


def test_one_resolver_takes_keys_and_labels_in_both_languages(catalog):
    assert catalog.stage_key("签约", "village") == "signing"
    assert catalog.stage_key("Agreements signed", "village") == "signing"
    assert catalog.stage_key("agreements SIGNED", "village") == "signing"
    assert catalog.stage_key("入库", "village") == "listed"  # the part before the bracket of 入库（标图建库）
    assert catalog.stage_key("清表") == "clearance"  # no kind: any parcel kind's pipeline
    assert catalog.stage_key("两规批准") == "plans_approved"
    assert catalog.stage_key("未启动") == NOT_STARTED and catalog.stage_key("not started") == NOT_STARTED
    assert catalog.stage_key("signing", "park") == "signing"  # a key stays a key: the move says what is wrong
    with pytest.raises(StageTransitionError) as e:
        catalog.stage_key("火星", "village")
    assert "签约（signing）" in e.value.message("zh") and "Agreements signed (signing)" in e.value.message("en")
    assert "两规批准" not in e.value.message("zh")  # the kind's own stages only


def test_advance_and_selections_accept_labels(tiny_store):
    ev = tiny_store.advance("V01-001", "意愿征询", "2024-05-01", "张工")
    assert ev.to_stage == "survey" and tiny_store.parcel("V01-001")["stage"] == "survey"
    evs = tiny_store.advance_many(["V01-001", "V01-002"], "Listed in renewal database", "2024-06-01", "张工")
    assert [e.to_stage for e in evs] == ["listed", "listed"]
    assert list(tiny_store.parcels(stage="签约", geometry=False)["code"]) == ["V01-003"]
    assert list(tiny_store.parcels(stage="Layout planned", geometry=False)["code"]) == ["HSR-001"]
    assert sorted(tiny_store.parcels(stage="未启动", geometry=False)["code"]) == ["MIN-01"]
    with pytest.raises(StageTransitionError) as e:
        tiny_store.parcels(stage="火星", geometry=False)
    assert "可选" in e.value.message("zh")
    with pytest.raises(StageTransitionError):
        tiny_store.advance("V01-001", "火星", "2024-07-01", "张工")
    assert tiny_store.parcel("V01-001")["stage"] == "listed"


@pytest.mark.parametrize("text,value", [("0.85", 0.85), ("85%", 0.85), ("85 %", 0.85), ("85％", 0.85),
                                        ("1", 1.0), ("0", 0.0), ("100%", 1.0), (0.9, 0.9), ("", None), (None, None)])
def test_a_share_is_a_fraction_or_a_percentage_with_its_sign(text, value):
    assert parse_share(text) == (pytest.approx(value) if value is not None else None)


@pytest.mark.parametrize("text", ["85", "1.5", "-1", "-5%", "101%", "nan", "inf", "八成", float("nan")])
def test_a_share_out_of_range_says_what_a_share_is(text):
    with pytest.raises(InputError) as e:
        parse_share(text)
    assert "0 到 1 之间的小数" in e.value.message("zh") and "85%" in e.value.message("zh")
    assert "fraction between 0 and 1" in e.value.message("en")


@pytest.mark.parametrize("share", [85.0, 1.5, -1.0, math.nan])
def test_the_store_refuses_a_share_out_of_range_before_the_gate(catalog, share):
    with pytest.raises(InputError) as e:
        catalog.check_transition("village", "plan", "vote", dt.date(2026, 5, 1), share=share, today=TODAY,
                                 evidence=["document"])
    assert e.value.key == "stage_input.bad_share"
    assert catalog.check_transition("village", "plan", "vote", dt.date(2026, 5, 1), share=0.85, today=TODAY,
                                    evidence=["document"]) == "advance"


def _run(*args, store):
    env = {k: v for k, v in os.environ.items() if k not in ("RENEWAL_PASSWORD", "RENEWAL_TOKEN", "RENEWAL_USER")}
    return subprocess.run([sys.executable, "-m", "gis.cli", "--store", str(store), *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)


def test_cli_advance_by_label_share_in_percent_and_folders(tiny_store, tmp_path):
    where = tiny_store.path or tiny_store.url
    out = _run("advance", "V01-001", "--to", "意愿征询", "--date", "2024-05-01", "--by", "张工", store=where)
    assert out.returncode == 0, out.stderr
    out = _run("advance", "V01-002", "--to", "vote", "--share", "85", "--by", "张工", store=where)
    assert out.returncode == 2 and "比例“85”无效" in out.stderr and "85%" in out.stderr
    assert "Traceback" not in out.stderr
    folder = tmp_path / "现场.jpg"
    folder.mkdir()
    out = _run("attach", "V01-002", str(folder), "--by", "张工", store=where)
    assert out.returncode == 2 and "是文件夹" in out.stderr and "is a folder" in out.stderr
    out = _run("advance", "V01-002", "--to", "listed", "--by", "张工", "--evidence", str(folder), store=where)
    assert out.returncode == 2 and "是文件夹" in out.stderr
    out = _run("block", "--village", "V01", "--stage", "签约", "--clear", "--by", "张工", store=where)
    assert out.returncode == 0, out.stderr  # V01-003, at 签约 and blocked, selected by the stage's label
    assert '"parcels": 1' in out.stdout and not tiny_store.parcel("V01-003")["blocked"]
