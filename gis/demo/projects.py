"""The demo district's key projects (重点项目): about sixty, fictional, deterministic.

They stand on the parks' parcels (electronics & AI by the HSR station, the digital-industry park,
nuclear and environmental equipment in the coastal sci-tech park), on the low-efficiency land
(pet products, technology upgrades), on the landmark sites and the ministry land; a few park
infrastructure projects stand on a whole site, and one has a polygon of its own. Each is on the
district's lists (provincial and city key projects; every project over 5 million yuan on one of
the three district lists), has a monthly investment plan for 2026, stage events, a carried-over
opening balance at the end of 2025 and daily reports up to the demo's last working day — most
on plan, about a quarter behind, a few days missing, three corrections. Projects in production
report their output. Nothing uses the clock.
"""
from __future__ import annotations

import calendar
import datetime as dt
import zlib

import numpy as np
import shapely

from gis.model.projects import ProjectConfig, year_share
from gis.store.gpkg import parse_blob

YEAR = 2026
#: the demo's units and the editor account that reports for each (the accounts get a unit assignment)
UNIT_EDITOR = {
    "高铁新城建设发展有限公司": "editor_central", "开发区建设发展集团": "editor_central",
    "滨海科创投资有限公司": "editor_central", "区城市更新集团": "editor_north", "区城市建设投资集团": "editor_north",
    "区文旅集团": "editor_south", "区园林绿化服务中心": "editor_south", "区土地储备中心": "editor_south",
}
COMPANIES = {
    "electronics_ai": ["华芯微电子", "星图智算", "海岳光电", "云帆智能", "启明传感", "博睿半导体", "灵犀机器人",
                       "远见数据", "千寻视觉", "南站算力"],
    "equipment": ["鲁东重工", "精工数控", "恒力液压", "北辰装备", "海川机械", "金鼎智造"],
    "nuclear": ["核盾装备", "华能核电配套", "海阳管阀", "国泰核材", "安泰屏蔽"],
    "environment": ["绿源环保", "清洋水处理", "碧蓝节能", "净界固废", "海润环境"],
    "pet": ["乖宝宠物", "萌宠食品", "汪喵用品", "宠乐智能", "佩蒂营养"],
}
PRODUCTS = {
    "electronics_ai": ["智能终端产业园", "人工智能算力中心", "传感器生产线", "集成电路封测基地", "工业机器人整机"],
    "equipment": ["高端数控机床", "智能装备制造基地", "液压件智能工厂", "海工装备"],
    "nuclear": ["核电关键部件", "核级管阀生产线", "核电装备配套产业园"],
    "environment": ["节能环保装备", "固废资源化利用", "海水淡化装备"],
    "pet": ["宠物食品智能工厂", "宠物用品产业园", "宠物营养品生产线"],
}
NOTES_BUILD = ["主体结构施工", "钢结构吊装", "土方开挖", "基础施工", "厂房封顶", "设备基础施工", "室外管网施工",
               "设备安装调试", "装饰装修", "道路硬化"]
NOTES_PREP = ["办理施工许可", "施工图审查", "能评环评办理", "土地摘牌手续", "规划许可办理", "招标准备"]
NOTES_PROD = ["满负荷生产", "新增订单排产", "二期设备调试", "产能爬坡"]


def _rng(seed: int, tag: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(("projects:" + tag).encode())])


def _workdays(start: dt.date, end: dt.date) -> list[dt.date]:
    days, d = [], start
    while d <= end:
        if d.weekday() < 5:
            days.append(d)
        d += dt.timedelta(days=1)
    return days


def _last_workday(day: dt.date) -> dt.date:
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def _site_plan(parcels: list[dict], rng) -> list[dict]:
    """The projects' places, kinds, industries and stages, before money."""
    by_park: dict = {}
    for p in parcels:
        if p["kind"] == "park":
            by_park.setdefault(p["park"], []).append(p)
    industry_of = {"hsr_ai": ["electronics_ai"], "digital": ["electronics_ai", "equipment"],
                   "coastal": ["nuclear", "environment"]}
    # the parcel's stage sets how far a project on it can be
    reach = {"layout": ["signed"], "plans_approved": ["signed", "procedures"], "acquisition": ["procedures", "started"],
             "clearance": ["started", "construction"], "ready": ["construction"], "started": ["construction", "production"],
             "in_production": ["production", "completed"]}
    out = []
    for park in sorted(by_park):
        ps = sorted(by_park[park], key=lambda p: p["code"])
        take = [ps[i] for i in sorted(rng.choice(len(ps), size=min(len(ps), {"hsr_ai": 15, "digital": 12,
                                                                          "coastal": 18}.get(park, 5)),
                                     replace=False))]
        i = 0
        while i < len(take):
            n = 2 if rng.random() < 0.25 and i + 1 < len(take) else 1
            group = take[i:i + n]
            i += n
            stage = rng.choice(reach.get(group[0]["stage"] or "layout", ["signed"]))
            if rng.random() < 0.12:
                stage = None  # 谋划: on the reserve list
            ind = str(rng.choice(industry_of.get(park, ["equipment"])))
            out.append({"parcels": [("parcel", p["code"]) for p in group], "unit": group[0]["unit"],
                        "kind": "industrial", "industry": ind, "stage": stage})
    for park, unit in sorted({(p["park"], p["unit"]) for p in parcels if p["kind"] == "park"}):
        out.append({"parcels": [("site", park)], "unit": unit, "kind": "infrastructure", "industry": None,
                    "stage": "construction", "name": "基础设施配套工程"})
    for p in sorted((p for p in parcels if p["kind"] == "low_efficiency"), key=lambda p: p["code"]):
        kind, ind = (("industrial", "pet") if rng.random() < 0.55 else ("tech_upgrade", str(rng.choice(
            ["equipment", "environment", "pet"]))))
        stage = str(rng.choice(["started", "construction", "production", "construction"]))
        out.append({"parcels": [("parcel", p["code"])], "unit": p["unit"], "kind": kind, "industry": ind,
                    "stage": stage})
    landmark_names = {"LM-ZOO": ("public", "野生动物园建设项目"), "LM-BOT": ("public", "植物园改造升级工程"),
                      "LM-PHX": ("renewal", "凤凰湖凤凰山生态提升工程"), "LM-CEM": ("renewal", "长荣水泥厂工业遗存活化利用项目"),
                      "LM-GOV": ("infrastructure", "区政府周边片区道路管网提升工程")}
    lm_stage = {"LM-ZOO": "construction", "LM-BOT": "completed", "LM-PHX": "procedures", "LM-CEM": "construction",
                "LM-GOV": "started"}
    for p in sorted((p for p in parcels if p["kind"] == "landmark"), key=lambda p: p["code"]):
        kind, name = landmark_names.get(p["code"], ("public", p["name"] + "项目"))
        out.append({"parcels": [("parcel", p["code"])], "unit": p["unit"], "kind": kind, "industry": None,
                    "stage": lm_stage.get(p["code"], "construction"), "name": name})
    for p in sorted((p for p in parcels if p["kind"] == "ministry" and p["stage"] in ("transfer", "land_banking")),
                    key=lambda p: p["code"]):
        out.append({"parcels": [("parcel", p["code"])], "unit": p["unit"], "kind": "renewal", "industry": None,
                    "stage": "signed", "name": p["name"].replace("地块", "") + "盘活利用项目"})
    # technology upgrades of firms already in the parks (技改): in production, report output
    firms = [p for p in parcels if p["kind"] == "park" and p["stage"] in ("started", "ready", "clearance")]
    for j, p in enumerate(sorted(firms, key=lambda p: p["code"])[:6]):
        ind = ["nuclear", "environment", "pet", "electronics_ai", "equipment", "pet"][j]
        out.append({"parcels": [("parcel", p["code"])], "unit": p["unit"], "kind": "tech_upgrade", "industry": ind,
                    "stage": "production"})
    return out


def _dates(stage: str | None, rng, big_2026: bool) -> dict:
    """Stage dates (signed → procedures → started → construction → production → completed) up to the
    stage reached, anchored where such projects are in a year: those started this year started
    in February–October, those in construction in 2024–2026, those in production went so in 2025–2026."""
    if stage is None:
        return {}

    def day(lo: str, hi: str) -> dt.date:
        a, b = dt.date.fromisoformat(lo), dt.date.fromisoformat(hi)
        return a + dt.timedelta(days=int(rng.integers(0, (b - a).days + 1)))

    back = (lambda d, lo, hi: d - dt.timedelta(days=int(rng.integers(lo, hi))))
    fwd = (lambda d, lo, hi: d + dt.timedelta(days=int(rng.integers(lo, hi))))
    if stage in ("signed", "procedures"):
        signed = day("2026-01-10", "2026-10-20") if big_2026 else day("2025-06-01", "2026-10-20")
        d = {"signed": signed}
        if stage == "procedures":
            d["procedures"] = min(fwd(signed, 20, 90), dt.date(YEAR, 11, 10))
        return d
    if stage == "started":
        started = day("2026-02-15", "2026-10-31")
    elif stage == "construction":
        started = day("2024-09-01", "2026-05-31")
    else:  # production, completed: in production in 2025–2026
        production = day("2025-03-01", "2026-10-31")
        started = back(production, 300, 600)
    d = {"started": started}
    d["procedures"] = back(started, 30, 100)
    d["signed"] = back(d["procedures"], 40, 120)
    if stage != "started":
        d["construction"] = min(fwd(started, 15, 40), dt.date(YEAR, 11, 10))
    if stage in ("production", "completed"):
        d["production"] = production
    if stage == "completed":
        d["completed"] = min(fwd(production, 30, 200), dt.date(YEAR, 11, 10))
    return d


def demo_projects(parcels: list[dict], cfg: ProjectConfig, seed: int, last_day: dt.date) -> dict:
    """Rows for the project tables (see gis/store/schema.py PROJECT_TABLES), in insert order."""
    rng = _rng(seed, "sites")
    sites = _site_plan(parcels, rng)
    rng = _rng(seed, "money")
    used = {k: 0 for k in COMPANIES}
    day_end = _last_workday(last_day)
    projects, lists, links, plan, reports, events = [], [], [], [], [], []
    for n, s in enumerate(sites, start=1):
        code = f"XM-{n:03d}"
        kind, ind, stage = s["kind"], s["industry"], s["stage"]
        if ind:
            company = COMPANIES[ind][used[ind] % len(COMPANIES[ind])]
            used[ind] += 1
            product = PRODUCTS[ind][int(rng.integers(len(PRODUCTS[ind])))]
            name = f"{company}{'技术改造' if kind == 'tech_upgrade' else ''}{product}项目"
            investor = f"{company}科技有限公司（示例）"
        else:
            name = s.get("name") or "项目"
            if s["parcels"][0][0] == "site":
                park = s["parcels"][0][1]
                name = {"hsr_ai": "高铁南站电子信息和人工智能产业园", "digital": "威思顿周边地块数字产业园",
                        "coastal": "滨海科创产业园"}.get(park, park) + name
            investor = s["unit"]
        total = {"industrial": rng.choice([rng.uniform(8000, 60000), rng.uniform(60000, 180000)], p=[0.7, 0.3]),
                 "tech_upgrade": rng.uniform(2500, 25000), "infrastructure": rng.uniform(15000, 60000),
                 "renewal": rng.uniform(10000, 80000), "public": rng.uniform(8000, 50000)}[kind]
        total = float(round(total / 100) * 100)
        big = total >= 100000 and kind == "industrial"
        dates = _dates(stage, rng, big and rng.random() < 0.6)
        started = dates.get("started")
        # investment done before 2026 (a carried-over opening balance), and the 2026 plan by month
        if stage in (None, "signed", "procedures") or (started and started.year >= YEAR):
            opening = 0.0
        elif stage in ("production", "completed"):
            opening = total * float(rng.uniform(0.8, 0.92))
        else:
            opening = total * float(rng.uniform(0.08, 0.45))
        opening = round(opening, 2)
        first_month = 1
        if stage in (None, "signed", "procedures"):
            first_month = int(rng.choice([8, 9, 10, 12, 12, 12]))  # planned to start this year; some will not make it
        elif started and started.year == YEAR:
            first_month = min(started.month + (started.day > 15), 12)
        remaining = total - opening
        if stage == "completed":
            year_plan = remaining
        elif stage == "production":
            year_plan = remaining * float(rng.uniform(0.5, 0.9))
        elif stage in (None, "signed", "procedures"):
            year_plan = total * float(rng.uniform(0.04, 0.12))
        else:
            year_plan = min(remaining, total * float(rng.uniform(0.25, 0.5)))
        if stage is None and rng.random() < 0.5:
            year_plan = 0.0  # 谋划: no money planned this year
        months = list(range(first_month, 13))
        w = np.array([0.6 if m in (1, 2) else 1.1 if m == 12 else 1.0 for m in months]) * rng.uniform(0.8, 1.2, len(months))
        monthly = {m: float(round(year_plan * x / w.sum(), 1)) for m, x in zip(months, w)} if year_plan > 0 else {}
        # how the project does against its plan: most on plan, a quarter behind
        pace = float(rng.uniform(0.45, 0.8)) if rng.random() < 0.25 else float(rng.uniform(1.0, 1.12))
        if stage in (None, "signed", "procedures"):
            pace = 0.0
        unit = s["unit"]
        listed = total >= cfg.threshold_wan
        district = ("under_construction" if stage in ("started", "construction", "production") else
                    "to_start" if stage in ("signed", "procedures") else "reserve" if stage is None else None)
        mine = []
        if total >= 100000 or (kind == "industrial" and rng.random() < 0.12):
            mine.append("provincial")
        elif total >= 40000 or rng.random() < 0.2:
            mine.append("city")
        if listed and district:
            mine.append(district)
        lists += [(code, x) for x in mine]
        links += [(code, t, c) for t, c in s["parcels"]]
        plan += [(code, YEAR, m, a) for m, a in sorted(monthly.items())]
        stage_date = dates.get(stage).isoformat() if stage else None
        projects.append({"code": code, "name": name, "kind": kind, "industry": ind, "investment_total_wan": total,
                         "unit": unit, "investor": investor,
                         "signed_on": dates["signed"].isoformat() if "signed" in dates else None,
                         "started_on": started.isoformat() if started else None,
                         "production_on": dates["production"].isoformat() if "production" in dates else None,
                         "completed_on": dates["completed"].isoformat() if "completed" in dates else None,
                         "stage": stage, "stage_date": stage_date, "footprint": None})
        for k, (st, d) in enumerate(sorted(dates.items(), key=lambda x: x[1])):
            events.append((code, "advance", None if k == 0 else sorted(dates.items(), key=lambda x: x[1])[k - 1][0],
                           st, d.isoformat(), f"{d.isoformat()}T02:30:00+00:00", UNIT_EDITOR.get(unit, "admin"), None,
                           None))
        # reports
        who = UNIT_EDITOR.get(unit, "admin")
        if opening > 0:
            reports.append([code, f"{YEAR - 1}-12-31", opening, None, "截至2025年底累计完成投资（台账结转）",
                            f"{YEAR}-01-05T01:00:00+00:00", "admin", None, None])
        if not listed or stage == "completed" and dates["completed"].year < YEAR:
            continue
        done = opening
        out_year = float(rng.uniform(1.2, 2.6)) * total if stage in ("production", "completed") else 0.0
        start_day = max(dt.date(YEAR, 1, 5), (dates.get("signed") or dt.date(YEAR, 1, 5)))
        stop = dates.get("completed") or day_end
        for d in _workdays(start_day, min(stop, day_end)):
            if rng.random() < (0.15 if d == day_end else 0.03):
                continue  # a missing report
            wd = len(_workdays(d.replace(day=1), d.replace(day=calendar.monthrange(d.year, d.month)[1])))
            inv = monthly.get(d.month, 0.0) / wd * pace * float(rng.uniform(0.6, 1.4))
            started_now = started is not None and d >= started
            if not started_now:
                inv = 0.0
            inv = float(round(min(inv, total - done), 2))
            done += inv
            out = float(round(out_year / 250 * float(rng.uniform(0.8, 1.2)), 2)) if out_year and (
                dates.get("production") and d >= dates["production"]) else None
            note = (NOTES_PROD if out else NOTES_BUILD if started_now else NOTES_PREP)[int(rng.integers(10)) % 4
                                                                                      if out else
                                                                                      int(rng.integers(10)) % 10
                                                                                      if started_now else
                                                                                      int(rng.integers(6))]
            minute = int(rng.integers(0, 50))
            reports.append([code, d.isoformat(), inv, out, note, f"{d.isoformat()}T{8 + minute // 60:02d}:{minute % 60:02d}:00+00:00",
                            who, None, None])
    # output of the leading industries: scaled so that each lands at a share of its target as of the last day
    share = {"nuclear": 0.93, "environment": 0.81, "pet": 0.88, "equipment": 0.95, "electronics_ai": 0.72}
    ys = year_share(YEAR, day_end)
    ind_of = {p["code"]: p["industry"] for p in projects}
    for ind, k in share.items():
        target = cfg.industries[ind].output_targets.get(YEAR) if ind in cfg.industries else None
        rows = [r for r in reports if r[3] is not None and ind_of[r[0]] == ind]
        got = sum(r[3] for r in rows)
        if target and got:
            f = target * ys * k / got
            for r in rows:
                r[3] = float(round(r[3] * f, 2))
    # three corrections: the unit sends the right figure for a day, with the reason
    crng = _rng(seed, "corrections")
    ids = [i for i, r in enumerate(reports) if r[2] > 0 and r[1] >= f"{YEAR}-09-01"]
    corrections = []
    for i in sorted(crng.choice(len(ids), size=min(3, len(ids)), replace=False)):
        r = reports[ids[i]]
        fixed = float(round(r[2] * 0.8, 2))
        corrections.append((ids[i] + 1, [r[0], r[1], fixed, r[3], r[4], r[5].replace("T0", "T1", 1), r[6], ids[i] + 1,
                                         "统计口径核对，更正当日完成投资"]))
    for _, row in corrections:
        reports.append(row)
    return {"projects": projects, "lists": lists, "parcels": links, "plan": plan, "reports": reports,
            "events": events}


def _own_polygon(con) -> bytes | None:
    """One project with a polygon of its own: the HSR station's square (the station point buffered)."""
    row = con.execute("SELECT geom FROM points WHERE code = 'hsr_south'").fetchone()
    if row is None:
        return None
    _, _, offset = parse_blob(bytes(row[0]))
    pt = shapely.from_wkb(bytes(row[0])[offset:])
    return shapely.to_wkb(pt.buffer(0.004, quad_segs=8))


def add_demo_projects(con, seed: int, cfg: ProjectConfig, last_day: dt.date) -> dict:
    """Write :func:`demo_projects` into a fresh demo file (an open sqlite3 connection, in its transaction),
    and give the editors the units they report for."""
    cur = con.execute("SELECT code, name, kind, zone, park, unit, stage FROM parcels ORDER BY code")
    names = [d[0] for d in cur.description]
    parcels = [dict(zip(names, r)) for r in cur.fetchall()]
    data = demo_projects(parcels, cfg, seed, last_day)
    cols = list(data["projects"][0])
    own = _own_polygon(con)
    station = next((p for p in data["projects"] if p["kind"] == "infrastructure" and p["unit"] == "高铁新城建设发展有限公司"),
                   None)
    if station is not None and own is not None:
        station["footprint"] = own
        station["name"] = "高铁南站站前广场及综合交通枢纽配套工程"
        data["parcels"] = [x for x in data["parcels"] if x[0] != station["code"]]
    con.executemany(f"INSERT INTO projects ({', '.join(cols)}, version, created_at, updated_at, updated_by)"
                    f" VALUES ({', '.join('?' * len(cols))}, 1, ?, ?, ?)",
                    [(*(p[c] for c in cols), f"{YEAR}-01-05T01:00:00+00:00", f"{YEAR}-01-05T01:00:00+00:00", "admin")
                     for p in data["projects"]])
    con.executemany("INSERT INTO project_lists (project, list_name) VALUES (?,?)", data["lists"])
    con.executemany("INSERT INTO project_parcels (project, object_type, code) VALUES (?,?,?)", data["parcels"])
    con.executemany("INSERT INTO project_plan (project, year, month, planned_wan) VALUES (?,?,?,?)", data["plan"])
    con.executemany("INSERT INTO project_reports (project, report_date, invested_wan, output_wan, note, recorded_at,"
                    " recorded_by, correction_of, reason) VALUES (?,?,?,?,?,?,?,?,?)",
                    [tuple(r) for r in data["reports"]])
    con.executemany("INSERT INTO project_events (project, action, from_stage, to_stage, event_date, recorded_at,"
                    " recorded_by, note, reason) VALUES (?,?,?,?,?,?,?,?,?)", data["events"])
    con.executemany("INSERT INTO assignments (username, scope, code) VALUES (?, 'unit', ?)",
                    sorted((u, unit) for unit, u in UNIT_EDITOR.items()))
    return {"projects": len(data["projects"]), "project_reports": len(data["reports"])}
