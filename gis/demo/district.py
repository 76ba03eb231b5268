"""The fictional demo district: a deterministic generator.

Renewal Atlas ships no real data (DESIGN.md section 2). This module invents a
plausible coastal district, "示例区（虚构）", with the structure of the plan —
three zones (北优、中融、南拓), the economic development zone and its three
parks, low-efficiency land, idle ministry land, five landmark sites, 30 old
villages cut into some 2,500 parcels — and a stage history for each parcel
that obeys the gates of ``layers/pipelines.toml``. Every map, page, export and
test then has something to show. Everything says it is fictional (``meta``
key ``demo`` = ``1``, ``data_source`` 示例数据（虚构）).

Determinism: the same seed gives the same features and events, value for
value. No wall-clock time is used (``recorded_at`` is the business date plus
a drawn time of day), and each part of the district draws from its own
random stream, so that changing how villages are placed does not reshuffle,
say, the stage history of the parks.

Geometry is made in metres in CGCS2000 / 3-degree GK zone 40 (EPSG:4549,
CM 120E; the district lies around 121.2–121.5E, 37.33–37.50N with the sea to
the north) and written in EPSG:4490, as docs/DATA_MODEL.md requires.

    build_demo(path, seed)            the GeoPackage store
    build_demo_raster(path, seed, …)  an offline basemap GeoTIFF to go with it
"""
from __future__ import annotations

# Lazy imports, on purpose: rasterio is imported only where the demo's basemap is generated,
# so that the command line and the app start without those heavy libraries.
import datetime as dt
import math
import os
import shutil
import sqlite3
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import Transformer
from shapely import affinity
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from gis.auth.accounts import demo_salt, hash_password
from gis.base.errors import InputError
from gis.base.units import STORE_CRS, areas_m2
from gis.demo.evidence import add_demo_evidence
from gis.demo.plans import add_demo_plans
from gis.demo.projects import add_demo_projects
from gis.model.pipelines import Catalog, Pipeline, load_catalog
from gis.model.projects import load_project_config
from gis.store import schema
from gis.store.gpkg import register_functions

WORK_CRS = "EPSG:4549"  # CGCS2000 / 3-degree GK CM 120E: metres for the district
GENERATOR = "gis.demo 1"
DATA_SOURCE = "示例数据（虚构）Renewal Atlas demo generator"
DISTRICT_NAME = ("示例区（虚构）", "Demo District (fictional)")

#: lon/lat of the local frame's origin, near the district's south-west corner
ORIGIN_LONLAT = (121.200, 37.333)
WIDTH = 26000.0  # west–east extent of the district, metres

FIRST_DAY = dt.date(2022, 1, 1)
LAST_DAY = dt.date(2026, 11, 15)  # no event after this business date

ZONES = {
    "north": ("北部", "North", "北优", "城市会客厅；人才蓄水池", "City living room; talent reservoir"),
    "central": ("中部", "Central", "中融", "产城融合示范区；经济发展隆起带",
                "Industry–city integration demonstration zone; economic uplift belt"),
    "south": ("南部", "South", "南拓", "前庭花园；乡村振兴样板区", "Front garden; rural-revitalisation model zone"),
}

INDUSTRIES = ("高端装备制造", "核电装备", "节能环保", "宠物用品", "电子信息和人工智能")

PARKS = {
    # code: (name, name_en, industry, parcel prefix, short name for parcel names, unit)
    "hsr_ai": ("高铁南站电子信息和人工智能产业园", "HSR South Station Electronics & AI Park",
               "电子信息和人工智能", "HSR", "高铁南站产业园", "高铁新城建设发展有限公司"),
    "digital": ("威思顿周边地块数字产业园", "Digital Industry Park (Weisidun plots)",
                "电子信息和人工智能；高端装备制造", "DIG", "数字产业园", "开发区建设发展集团"),
    "coastal": ("滨海科创产业园", "Coastal Sci-Tech Park", "核电装备；节能环保", "SCI", "滨海科创产业园",
                "滨海科创投资有限公司"),
}

LANDMARKS = {
    # code: (name, land use, unit)
    "LM-ZOO": ("野生动物园", "林地、园地（规划野生动物园）", "区文旅集团"),
    "LM-BOT": ("植物园改造升级", "公园绿地（现状植物园）", "区园林绿化服务中心"),
    "LM-PHX": ("凤凰湖凤凰山提升", "水域、林地（凤凰湖、凤凰山）", "区文旅集团"),
    "LM-CEM": ("长荣水泥厂工业遗存", "工业用地（停产水泥厂）", "区城市更新集团"),
    "LM-GOV": ("区政府周边", "机关团体、商业及住宅用地", "区城市建设投资集团"),
}

LOW_EFFICIENCY_NAMES = (
    "原东方针织厂地块", "原农机修造厂地块", "原第二砖瓦厂地块", "原海丰水产加工厂地块", "原宏达化纤厂地块",
    "原城南物流仓储地块", "原红星橡胶厂地块", "原新华印刷厂地块", "原金港食品厂地块", "原光明铸造厂地块",
)
LOW_EFFICIENCY_USES = ("低效工业用地（停产厂房）", "仓储用地（闲置）", "工业用地（容积率偏低）", "低效工业用地（部分出租）")

MINISTRY_PLOTS = (
    # (name, owner, land use)
    ("某部原培训中心地块", "某部直属单位（虚构）", "部委所属闲置用地（原培训中心）"),
    ("某部原物资仓库地块", "某部物资储备机构（虚构）", "部委所属闲置用地（原仓储）"),
    ("某研究院原试验场地块", "某研究院（虚构）", "部委所属闲置用地（原试验场）"),
    ("某部原疗养院地块", "某部机关服务中心（虚构）", "部委所属闲置用地（原疗养院）"),
    ("某局原海洋观测站地块", "某海洋调查机构（虚构）", "部委所属闲置用地（原观测站）"),
    ("某部原农场地块", "某部农垦单位（虚构）", "部委所属闲置用地（原农场）"),
)

# Village name pools per zone: coastal names by the sea, hill names in the south.
VILLAGE_NAMES = {
    "north": [("东沙村", "Dongsha"), ("渔港村", "Yugang"), ("崖头村", "Yatou"), ("盐场村", "Yanchang"),
              ("河口村", "Hekou"), ("东岙村", "Dong'ao"), ("海庄村", "Haizhuang"), ("西岚村", "Xilan")],
    "central": [("前店村", "Qiandian"), ("后疃村", "Houtuan"), ("北马家村", "Beimajia"),
                ("王家疃村", "Wangjiatuan"), ("大埠村", "Dabu"), ("孙家庄村", "Sunjiazhuang"),
                ("桃园村", "Taoyuan"), ("姜家村", "Jiangjia"), ("李家疃村", "Lijiatuan"),
                ("槐树庄村", "Huaishuzhuang"), ("林家店村", "Linjiadian"), ("高疃村", "Gaotuan"),
                ("曲家村", "Qujia"), ("黄埠村", "Huangbu"), ("西沟村", "Xigou")],
    "south": [("石岭村", "Shiling"), ("双山村", "Shuangshan"), ("南岭村", "Nanling"), ("泉水村", "Quanshui"),
              ("上庄村", "Shangzhuang"), ("下河村", "Xiahe"), ("柳林村", "Liulin"), ("南庄村", "Nanzhuang"),
              ("松岚村", "Songlan"), ("凤岭村", "Fengling"), ("杨家岭村", "Yangjialing"), ("东夼村", "Dongkuang"),
              ("石门村", "Shimen"), ("葛家村", "Gejia")],
}
VILLAGES_PER_ZONE = {"north": 6, "central": 12, "south": 12}

# Sub-district offices by zone and west/east half of the district.
SUBDISTRICTS = {
    ("north", 0): "海港街道办事处", ("north", 1): "滨海街道办事处",
    ("central", 0): "城西街道办事处", ("central", 1): "城东街道办事处",
    ("south", 0): "凤凰街道办事处", ("south", 1): "南山街道办事处",
}
STAFF = ("张伟", "李娜", "王芳", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴婷",
         "孙浩", "马丽", "朱强", "胡佳", "郭涛", "林晓", "何军", "高雪", "罗斌", "郑琳")

# Days from the previous stage, (low, high), per pipeline and stage; gates come on top.
DURATIONS = {
    "village": {"listed": (10, 35), "baseline": (20, 70), "plan": (20, 80), "vote": (25, 90),
                "partner": (30, 100), "signing": (40, 150), "demolition": (30, 120), "clearance": (30, 90),
                "land_supply": (40, 150), "construction": (30, 120), "resettlement": (360, 640),
                "completed": (60, 180)},
    "park": {"plans_approved": (120, 300), "acquisition": (30, 120), "clearance": (90, 240), "ready": (60, 180),
             "started": (30, 150), "production": (300, 540)},
    "ministry": {"negotiation": (90, 300), "land_banking": (90, 360), "replanning": (60, 240),
                 "transfer": (60, 240), "development": (60, 240)},
    "landmark": {"design": (90, 240), "permits": (60, 240), "construction": (60, 240), "completed": (240, 600)},
}
DEFAULT_DURATION = (30, 120)

NOTES = {
    "village": {"survey": "完成入户意愿征询", "listed": "意愿征询公示期满，纳入城市更新项目库",
                "baseline": "完成房屋、人口及土地基础数据调查", "plan": "调查结果公示期满，改造方案编制完成",
                "vote": "村民会议表决通过，同意率{share:.0%}", "partner": "公开遴选确定合作企业",
                "signing": "补偿安置协议签约率{share:.0%}", "demolition": "房屋拆除完成",
                "clearance": "完成清表，达到净地条件", "land_supply": "土地挂牌出让完成",
                "construction": "项目开工建设", "resettlement": "回迁安置房交付",
                "completed": "项目竣工验收"},
    "park": {"layout": "完成园区规划布局", "plans_approved": "控规、土规（两规）获批",
             "acquisition": "征收拆迁完成", "clearance": "清表完成", "ready": "水电路讯配套到位，具备开工条件",
             "started": "{industry}项目开工", "production": "项目竣工投产"},
    "ministry": {"tenure_check": "完成权属核查，确权资料齐全", "negotiation": "与{owner}达成盘活协议",
                 "land_banking": "完成收储", "replanning": "控规调整获批", "transfer": "土地公开出让",
                 "development": "项目开发建设"},
    "landmark": {"concept": "完成项目谋划", "design": "规划设计方案通过评审", "permits": "完成立项、用地等前期手续",
                 "construction": "开工建设", "completed": "完工并投入使用"},
}
BLOCK_NOTE = "列为卡点，专班跟进协调"
#: stages that happen to a whole village or park at once: one date, one share for all its parcels
GROUP_WIDE = ("vote", "layout", "plans_approved")

# Reasons a parcel gets stuck (卡点), by phase of its current stage; some kinds have their own.
BLOCK_REASONS = {
    "prep": ("权属争议", "基础数据调查入户受阻", "村民意见分歧较大", "规划指标未落实"),
    "acquisition": ("个别户未签约", "个别户未签约", "地上附着物补偿未谈妥", "坟墓迁移未完成", "权属争议",
                    "安置方案未达成一致"),
    "cleared": ("资金未到位", "土地供应手续未完成", "坟墓迁移未完成", "地下管线迁改未完成"),
    "build": ("资金未到位", "施工进度滞后", "安置房建设滞后"),
    "ministry": ("权属争议", "部委审批流程未完成", "收储资金未到位", "历史遗留债务未理清"),
    "landmark": ("资金未到位", "用地手续未完善", "设计方案需调整"),
}
BLOCK_SHARE = 0.045  # of all parcels; the brief asks for 3–6 %
BLOCK_WEIGHT = {"prep": 1.5, "acquisition": 5.0, "cleared": 2.0, "build": 1.0}


# --------------------------------------------------------------------------- helpers
def district_rng(seed: int, tag: str) -> np.random.Generator:
    """An independent random stream per part of the district (see module docstring)."""
    return np.random.default_rng([seed, zlib.crc32(tag.encode())])


def _noise1d(rng, t: np.ndarray, octaves) -> np.ndarray:
    """Smooth random profile along ``t`` (metres): cosine-interpolated knots per (wavelength, amplitude)."""
    out = np.zeros(len(t))
    for wl, amp in octaves:
        u = (t - t.min() + rng.uniform(0, wl)) / wl
        i = np.floor(u).astype(int)
        w = (1 - np.cos(np.pi * (u - i))) / 2
        knots = rng.uniform(-1, 1, i.max() + 2)
        out += amp * (knots[i] * (1 - w) + knots[i + 1] * w)
    return out


def _blob(rng, cx, cy, rx, ry, rot=0.0, rough=0.18, n=72) -> Polygon:
    """An irregular, star-shaped (hence simple) polygon around (cx, cy)."""
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 7):
        r += rough * rng.uniform(0.2, 1.0) / k ** 0.8 * np.cos(k * th + rng.uniform(0, 2 * np.pi))
    r += rng.normal(0, rough * 0.06, n)  # small wiggles: boundaries follow walls and ditches
    r = np.clip(r, 0.5, None)
    poly = Polygon(np.c_[rx * r * np.cos(th), ry * r * np.sin(th)])
    return affinity.translate(affinity.rotate(poly, rot, origin=(0, 0)), cx, cy)


def _lot(rng, cx, cy, w, h, rot=0.0, notch=0.5) -> Polygon:
    """A walled compound: a rotated rectangle, sometimes with a corner cut off."""
    poly = box(-w / 2, -h / 2, w / 2, h / 2)
    if rng.random() < notch:
        cw, ch = w * rng.uniform(0.2, 0.4), h * rng.uniform(0.2, 0.4)
        sx, sy = rng.choice([-1, 1]), rng.choice([-1, 1])
        corner = box(min(sx * w / 2, sx * (w / 2 - cw)), min(sy * h / 2, sy * (h / 2 - ch)),
                     max(sx * w / 2, sx * (w / 2 - cw)), max(sy * h / 2, sy * (h / 2 - ch)))
        poly = poly.difference(corner)
    return affinity.translate(affinity.rotate(poly, rot, origin=(0, 0)), cx, cy)


def _polygons(geom) -> list[Polygon]:
    """The polygonal parts of any geometry."""
    return [g for g in shapely.get_parts(geom) if isinstance(g, Polygon) and not g.is_empty] if geom is not None else []


def _largest(geom) -> Polygon:
    return max(_polygons(geom), key=lambda g: g.area)


def _multi(geom) -> MultiPolygon:
    parts = _polygons(geom)
    if not parts:
        raise ValueError("empty polygon")
    return MultiPolygon(parts)


def _under(xs, ys, bottom=-20000.0) -> Polygon:
    """The half-plane below a west–east line y(x), as a polygon."""
    return Polygon(list(zip(xs, ys)) + [(xs[-1], bottom), (xs[0], bottom)])


def _above(xs, ys, top=40000.0) -> Polygon:
    return Polygon(list(zip(xs, ys)) + [(xs[-1], top), (xs[0], top)])


def _date(ordinal: int) -> str:
    return dt.date.fromordinal(int(ordinal)).isoformat()


# --------------------------------------------------------------------------- layout
@dataclass
class Village:
    code: str
    name: str
    name_en: str
    zone: str
    geom: Polygon
    unit: str = ""


@dataclass
class Layout:
    """The district's geometry in local metres (GK zone 40 minus ``origin``); cheap to build."""

    seed: int
    origin: tuple[float, float]
    coast_x: np.ndarray
    coast_y: np.ndarray
    district: Polygon
    sea: Polygon
    zones: dict[str, Polygon]
    devzone: Polygon
    parks: dict[str, Polygon]
    landmarks: dict[str, Polygon]
    low_efficiency: list[Polygon]
    ministry: list[Polygon]
    villages: list[Village]
    lake: Polygon
    hills: list[tuple]  # (x, y, height m, sigma x, sigma y)
    roads: list[LineString]
    railway: LineString
    town: Polygon  # built-up core of the north zone, for the basemap
    station: Point
    government: Point
    ministry_pick: list[int] = field(default_factory=list)


def _origin() -> tuple[float, float]:
    tr = Transformer.from_crs(STORE_CRS, WORK_CRS, always_xy=True)
    x, y = tr.transform(*ORIGIN_LONLAT)
    return round(x, 3), round(y, 3)


def build_layout(seed: int = 2026) -> Layout:
    """Coastline, district, zones, parks, landmarks, plots and the 30 villages (no parcels yet)."""
    rng = district_rng(seed, "frame")
    xs = np.arange(-6000.0, WIDTH + 6000.0 + 1, 50.0)

    # The coast: a bay in the west, a headland in the east, wiggles at every scale.
    bay_x, head_x = rng.uniform(6000, 10000), rng.uniform(21000, 24000)
    coast_y = (17500 + _noise1d(rng, xs, [(9000, 550), (3000, 260), (900, 90), (250, 25)])
               - 1300 * np.exp(-(((xs - bay_x) / 1700) ** 2)) + 700 * np.exp(-(((xs - head_x) / 1300) ** 2)))
    land = _under(xs, coast_y)

    # The district: a squarish outline (a superellipse) bent by harmonics and
    # roughened along its length, whose northern side the coast cuts off.
    th = np.linspace(0, 2 * np.pi, 1440, endpoint=False)
    a, b, p = WIDTH / 2, 9800.0, 4.0
    r = (np.abs(np.cos(th) / a) ** p + np.abs(np.sin(th) / b) ** p) ** (-1 / p)
    # harmonics are periodic, so the outline closes without a seam; high ones are the wiggles
    k = np.arange(2, 161)
    amp = np.where(k <= 10, 0.05 / np.sqrt(k), 0.3 / k ** 1.3)
    r *= 1 + (amp[:, None] * np.cos(k[:, None] * th[None, :] + rng.uniform(0, 2 * np.pi, len(k))[:, None])).sum(0)
    ring = np.c_[WIDTH / 2 + r * np.cos(th), 10200 + r * np.sin(th)]
    district = _largest(shapely.make_valid(Polygon(ring)).intersection(land))
    frame = box(*np.add(district.bounds, (-3000, -3000, 3000, 3000)))
    sea = _largest(_above(xs, coast_y).intersection(frame))

    # Three bands split by wavy lines; differences make them tile the district exactly.
    s1 = 12900 + _noise1d(rng, xs, [(8000, 450), (2500, 150), (600, 25)])
    s2 = 7100 + _noise1d(rng, xs, [(8000, 450), (2500, 150), (600, 25)])
    under1, under2 = _under(xs, s1), _under(xs, s2)
    zones = {
        "north": _largest(district.difference(under1)),
        "central": _largest(district.intersection(under1).difference(under2)),
        "south": _largest(district.intersection(under2)),
    }
    if abs(sum(z.area for z in zones.values()) - district.area) > 1.0:  # a wavy line cut off an islet
        raise RuntimeError("demo layout: the zones do not cover the district; try another seed")

    def at(line, x):
        return float(np.interp(x, xs, line))

    def mid_central(x):
        return (at(s1, x) + at(s2, x)) / 2

    rng = district_rng(seed, "sites")
    j = lambda: rng.uniform(-200, 200)  # noqa: E731 - nominal positions move a little with the seed

    # Railway (HSR) across the south; the south station on it.
    rail_y = 4000 + _noise1d(rng, xs, [(12000, 300), (4000, 80)])
    railway = LineString(np.c_[xs, rail_y])
    st_x = 10500 + j()
    station = Point(st_x, at(rail_y, st_x))

    devzone = _largest(_blob(rng, 16500 + j(), mid_central(16500) + 300, 3800, 2600, rng.uniform(-4, 4), 0.08)
                       .intersection(district.buffer(-300)))
    parks = {}
    parks["hsr_ai"] = _lot(rng, st_x + 1300, station.y + 950, 1900, 1050, rng.uniform(-6, 6), notch=0.7)
    dc = devzone.centroid
    parks["digital"] = _lot(rng, dc.x - 500 + j(), dc.y - 250 + j(), 1300, 950, rng.uniform(-6, 6), notch=0.6)
    cx = 19800 + j()
    top = float(np.min(coast_y[(xs > cx - 1400) & (xs < cx + 1400)])) - 300
    parks["coastal"] = _largest(_lot(rng, cx, top - 500, 2300, 1000, 0, notch=0.0)
                                .intersection(district.buffer(-200)))

    landmarks = {}
    phx = (5200 + j(), 2750 + j())
    landmarks["LM-PHX"] = _blob(rng, *phx, 1200, 850, rng.uniform(-10, 10), 0.12)
    lake = _blob(rng, phx[0] - 420, phx[1] + 150, 520, 320, rng.uniform(-20, 20), 0.2)
    landmarks["LM-ZOO"] = _blob(rng, 18300 + j(), 2700 + j(), 1200, 850, rng.uniform(-10, 10), 0.15)
    landmarks["LM-BOT"] = _blob(rng, 8700 + j(), mid_central(8700) + 500, 650, 450, rng.uniform(-20, 20), 0.12)
    landmarks["LM-CEM"] = _lot(rng, 3300 + j(), mid_central(3300) - 700, 700, 480, rng.uniform(-15, 15), 0.8)
    gx = 12300 + j()
    gy = at(s1, gx) + 0.45 * (at(coast_y, gx) - at(s1, gx))
    landmarks["LM-GOV"] = _blob(rng, gx, gy, 850, 600, rng.uniform(-10, 10), 0.06)
    government = Point(gx + 60, gy + 40)
    town = _largest(_blob(rng, gx + 800, gy + 700, 3600, 1700, 0, 0.15).intersection(land))
    # every site lies inside the district, clear of its edge
    inside = district.buffer(-150)
    parks = {k: _largest(g.intersection(inside)) for k, g in parks.items()}
    landmarks = {k: _largest(g.intersection(inside)) for k, g in landmarks.items()}
    lake = _largest(lake.intersection(landmarks["LM-PHX"].buffer(-60)))  # 凤凰湖 is part of the site

    # Hills: a ridge along the south, Phoenix Hill east of the lake, a quarry hill by the cement plant.
    hills = [(float(x) + rng.uniform(-600, 600), rng.uniform(900, 2800), rng.uniform(110, 260),
              rng.uniform(800, 1600), rng.uniform(700, 1300)) for x in np.linspace(1500, 24500, 8)]
    hills.append((phx[0] + 520, phx[1] - 160, 330.0, 600.0, 500.0))  # 凤凰山
    hills.append((landmarks["LM-ZOO"].centroid.x + 300, landmarks["LM-ZOO"].centroid.y - 500, 180.0, 900.0, 700.0))
    cem = landmarks["LM-CEM"].centroid
    hills.append((cem.x - 700, cem.y + 500, 110.0, 500.0, 450.0))
    for _ in range(4):  # low knolls elsewhere
        hills.append((rng.uniform(2000, 24000), rng.uniform(7000, 14000), rng.uniform(25, 60),
                      rng.uniform(400, 800), rng.uniform(400, 800)))

    # Main roads: a coast road, two west–east arterials, five north–south roads.
    roads = [LineString(np.c_[xs, coast_y - 650 + _noise1d(rng, xs, [(3000, 120)])])]
    for line, off in ((s1, -350), (s2, 250)):
        roads.append(LineString(np.c_[xs, line + off + _noise1d(rng, xs, [(4000, 100)])]))
    for x0 in (3800, 8800, 13600, 18700, 23200):
        ys = np.arange(-1000.0, 20000.0, 100.0)
        rx = x0 + rng.uniform(-300, 300) + _noise1d(rng, ys, [(5000, 250), (1500, 60)])
        line = LineString(np.c_[rx, ys]).intersection(land)
        roads.extend(g for g in shapely.get_parts(line) if g.length > 1000)

    occupied = [*parks.values(), *landmarks.values()]

    def place(rng, region, make, gap, tries=3000):
        shapely.prepare(region)
        for _ in range(tries):
            cand = make(rng)
            if not region.contains(cand):
                continue
            if occupied and shapely.dwithin(np.asarray(occupied, dtype=object), cand, gap).any():
                continue
            occupied.append(cand)
            return cand
        raise RuntimeError("demo layout: no room for a site; try another seed")

    # Low-efficiency plots, mostly in the development zone's central part.
    rng = district_rng(seed, "plots")
    inner = district.buffer(-250)
    core = devzone.intersection(zones["central"]).buffer(-150)
    low = []
    for i in range(int(rng.integers(7, 10))):
        region = core if i < 6 else zones["central"].buffer(-200).intersection(inner)
        b = region.bounds

        def make(rng, b=b):
            return _lot(rng, rng.uniform(b[0], b[2]), rng.uniform(b[1], b[3]), rng.uniform(220, 480),
                        rng.uniform(180, 360), rng.uniform(-20, 20))
        low.append(place(rng, region, make, 120))

    # Idle ministry land: big walled compounds, anywhere but mostly north and central.
    n_min = int(rng.integers(4, 6))
    where = ["north", "central", "central", "south", "north"][:n_min]
    ministry = []
    for z in where:
        region = zones[z].buffer(-300).intersection(inner)
        b = region.bounds

        def make(rng, b=b):
            return _lot(rng, rng.uniform(b[0], b[2]), rng.uniform(b[1], b[3]), rng.uniform(350, 700),
                        rng.uniform(300, 560), rng.uniform(-25, 25), notch=0.6)
        ministry.append(place(rng, region, make, 200))
    ministry_pick = [int(i) for i in rng.permutation(len(MINISTRY_PLOTS))[:n_min]]

    # Villages: irregular, 300–900 m across, spread out, clear of roads, the lake and every other site.
    rng = district_rng(seed, "villages")
    occupied.append(lake)
    occupied.extend(roads)
    placed: list[tuple[str, Polygon]] = []
    for z in ("north", "central", "south"):
        region = zones[z].buffer(-180).intersection(inner)
        shapely.prepare(region)
        b = region.bounds
        spacing = 1500.0
        for _ in range(VILLAGES_PER_ZONE[z]):
            for attempt in range(4000):
                if attempt and attempt % 1000 == 0:
                    spacing *= 0.8  # crowded zone: accept villages a little closer together
                rx = rng.uniform(170, 400)
                cand = _blob(rng, rng.uniform(b[0], b[2]), rng.uniform(b[1], b[3]), rx, rx * rng.uniform(0.6, 1.0),
                             rng.uniform(0, 180), rough=0.22)
                w = shapely.minimum_rotated_rectangle(cand)
                sides = sorted(math.dist(*w.exterior.coords[i:i + 2]) for i in range(2))
                if not (300 <= sides[0] and sides[1] <= 900):
                    continue
                if not region.contains(cand):
                    continue
                c = cand.centroid
                if any(c.distance(p.centroid) < spacing for _, p in placed):
                    continue
                if shapely.dwithin(np.asarray(occupied, dtype=object), cand, 120).any():
                    continue
                occupied.append(cand)
                placed.append((z, cand))
                break
            else:
                raise RuntimeError("demo layout: no room for a village; try another seed")

    order = {"north": 0, "central": 1, "south": 2}
    placed.sort(key=lambda zp: (order[zp[0]], round(zp[1].centroid.x)))
    names = {z: [VILLAGE_NAMES[z][i] for i in rng.permutation(len(VILLAGE_NAMES[z]))] for z in VILLAGE_NAMES}
    villages = []
    for i, (z, poly) in enumerate(placed):
        zh, py = names[z].pop()
        # run by the sub-district office, or by the zone's platform company inside the development zone
        unit = "开发区建设发展集团" if devzone.contains(poly.centroid) else SUBDISTRICTS[(z, int(poly.centroid.x > WIDTH / 2))]
        villages.append(Village(f"V{i + 1:02d}", zh, f"{py} Village", z, poly, unit))

    return Layout(
        seed=seed, origin=_origin(), coast_x=xs, coast_y=coast_y, district=district, sea=sea, zones=zones,
        devzone=devzone, parks=parks, landmarks=landmarks, low_efficiency=low, ministry=ministry,
        villages=villages, lake=lake, hills=hills, roads=roads, railway=railway, town=town,
        station=station, government=government, ministry_pick=ministry_pick,
    )


# --------------------------------------------------------------------------- parcels
def _subdivide(rng, poly: Polygon, n: int, jitter: float, min_area: float = 200.0) -> list[Polygon]:
    """Cut ``poly`` into about ``n`` parcels that tile it.

    Voronoi cells of a jittered, rotated grid of points read like village lots
    (low jitter: like the blocks of a planned park). Pieces under ``min_area``
    are merged into the neighbour they share most boundary with, else dropped.
    """
    c = poly.centroid
    rot = rng.uniform(0, 90)
    p = affinity.rotate(poly, -rot, origin=c)
    s = math.sqrt(p.area / n)
    minx, miny, maxx, maxy = p.bounds
    gx, gy = np.meshgrid(np.arange(minx + s / 2, maxx, s), np.arange(miny + s / 2, maxy, s))
    x = gx.ravel() + rng.uniform(-jitter, jitter, gx.size) * s
    y = gy.ravel() + rng.uniform(-jitter, jitter, gx.size) * s
    keep = shapely.contains_xy(p, x, y)
    pts = shapely.multipoints(np.c_[x[keep], y[keep]])
    cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=p))
    pieces = _polygons(shapely.intersection(cells, p))
    big = [g for g in pieces if g.area >= min_area]
    for sliver in (g for g in pieces if g.area < min_area):
        shared = [shapely.length(shapely.intersection(sliver.boundary, b.boundary)) for b in big]
        k = int(np.argmax(shared)) if shared else -1
        if k >= 0 and shared[k] > 0.5:
            big[k] = _largest(shapely.union(big[k], sliver))
    return [affinity.rotate(g, rot, origin=c) for g in big]


def _split(rng, poly, n, jitter, lo, hi) -> list[Polygon]:
    """``_subdivide`` until the count is within [lo, hi] (it nearly always is at once)."""
    for _ in range(8):
        parts = _subdivide(rng, poly, n, jitter)
        if lo <= len(parts) <= hi:
            return parts
        n = max(lo + 2, min(hi - 2, n + (lo - len(parts) if len(parts) < lo else hi - len(parts))))
    raise RuntimeError("demo: could not split a site into %d–%d parcels" % (lo, hi))


def _reading_order(parts: list[Polygon]) -> list[Polygon]:
    """North-west first, in 150 m rows, so parcel numbers read like a map."""
    return sorted(parts, key=lambda g: (-round(g.centroid.y / 150), g.centroid.x))


@dataclass
class _Plan:
    """A site's parcels before stages: geometry and fixed attributes."""

    code: str
    name: str
    kind: str
    geom: Polygon
    village: str = ""
    park: str = ""
    unit: str = ""
    owner: str = ""
    base_use: str = ""
    group: str = ""  # parcels of one group share a timeline (a village, a park)
    extra: dict = field(default_factory=dict)


def _plan_parcels(lay: Layout, seed: int) -> list[_Plan]:
    rng = district_rng(seed, "parcels")
    plans: list[_Plan] = []
    # Villages: the number of parcels follows the village's area, about 2,400 in all.
    total = sum(v.geom.area for v in lay.villages)
    uses = ("农村宅基地", "集体经营性建设用地", "村内空闲地", "公共服务设施用地", "村内道路及广场")
    for v in lay.villages:
        n = int(np.clip(round(2400 * v.geom.area / total), 28, 140))
        parts = _reading_order(_split(rng, v.geom, n, 0.28, 20, 150))
        for k, g in enumerate(parts, 1):
            use = uses[int(rng.choice(5, p=[0.7, 0.12, 0.08, 0.05, 0.05]))]
            plans.append(_Plan(f"{v.code}-{k:03d}", f"{v.name}{k}号地块", "village", g, village=v.code,
                               unit=v.unit, base_use=use, group=v.code))
    for code, (_, _, industry, prefix, short, unit) in PARKS.items():
        poly = lay.parks[code]
        n = int(np.clip(round(poly.area / 90000), 14, 24))
        parts = _reading_order(_split(rng, poly, n, 0.08, 10, 30))
        for k, g in enumerate(parts, 1):
            use = ("耕地", "村庄建设用地", "园地", "工矿用地")[int(rng.integers(4))]
            plans.append(_Plan(f"{prefix}-{k:03d}", f"{short}{k}号地块", "park", g, park=code, unit=unit,
                               base_use=use, group=code, extra={"industry": industry.split("；")[0]}))
    for k, g in enumerate(lay.low_efficiency, 1):
        name = LOW_EFFICIENCY_NAMES[(k - 1) % len(LOW_EFFICIENCY_NAMES)]
        plans.append(_Plan(f"LE-{k:02d}", name, "low_efficiency", g, unit="区城市更新集团",
                           base_use=LOW_EFFICIENCY_USES[int(rng.integers(len(LOW_EFFICIENCY_USES)))],
                           group=f"LE-{k:02d}", extra={"industry": INDUSTRIES[int(rng.integers(len(INDUSTRIES)))]}))
    for k, (g, pick) in enumerate(zip(lay.ministry, lay.ministry_pick), 1):
        name, owner, use = MINISTRY_PLOTS[pick]
        plans.append(_Plan(f"MIN-{k:02d}", name, "ministry", g, unit="区土地储备中心", owner=owner, base_use=use,
                           group=f"MIN-{k:02d}", extra={"owner": owner}))
    for code, (name, use, unit) in LANDMARKS.items():
        plans.append(_Plan(code, name, "landmark", lay.landmarks[code], unit=unit, base_use=use, group=code))
    return plans


# --------------------------------------------------------------------------- stages
def _timeline(rng, pipe: Pipeline, start: int) -> np.ndarray:
    """Ordinal dates of every stage of ``pipe`` for a group that starts on ``start``."""
    days = DURATIONS.get(pipe.key, {})
    out = [start]
    for st in pipe.stages[1:]:
        lo, hi = days.get(st.key, DEFAULT_DURATION)
        out.append(out[-1] + max(int(rng.integers(lo, hi + 1)), st.min_days + 1))
    return np.array(out)


def _fit(tl: np.ndarray, pipe: Pipeline, upto: int, deadline: int) -> np.ndarray:
    """Compress a timeline so that stage ``upto`` falls on or before ``deadline``."""
    if tl[upto] <= deadline:
        return tl
    f = (deadline - tl[0]) / (tl[upto] - tl[0])
    out = [int(tl[0])]
    for i in range(1, len(tl)):
        out.append(out[-1] + max(int((tl[i] - tl[i - 1]) * f), pipe.stages[i].min_days + 1))
    return np.array(out)


def _share(rng, threshold: float) -> float:
    """A stated share comfortably above its gate (e.g. 0.82–0.97 for an 80 % vote)."""
    return round(float(rng.uniform(threshold + 0.02, threshold + (1 - threshold) * 0.85)), 3)


@dataclass
class _Group:
    timeline: np.ndarray
    reach: int  # stage index the group has reached; -1 = not started
    spread: dict  # parcel offset from ``reach`` → probability
    jitter: int  # days a parcel's date may trail the group's
    shares: dict  # stage key → group-level share (a village-wide vote)
    floor: int = -1  # no parcel of the group falls below this index


def _groups(lay: Layout, plans: list[_Plan], cat: Catalog, seed: int) -> dict[str, _Group]:
    """A timeline and a reached stage per village, park and single site."""
    rng = district_rng(seed, "stages")
    first, last = FIRST_DAY.toordinal(), LAST_DAY.toordinal()
    groups: dict[str, _Group] = {}

    # "成熟一个、启动一个，干一个、成一个": villages start one after another; the
    # first three are done, the next ones are at ever earlier stages, five wait.
    vp = cat.pipeline_for("village")
    n_done, n_wait = 3, 5
    order = [lay.villages[i].code for i in rng.permutation(len(lay.villages))]
    vote_keys = [s.key for s in vp.stages if s.min_share is not None and s.key in GROUP_WIDE]
    # village-level stage of the villages under way, most advanced first; weighted
    # towards signing and demolition, where renewal projects spend longest
    under_way = [11, 10, 10, 9, 9, 8, 8, 7, 7, 7, 6, 6, 6, 5, 5, 4, 3, 3, 2, 1, 0, 0]
    top = len(vp.stages) - 1
    for rank, code in enumerate(order):
        shares = {k: _share(rng, vp.stage(k).min_share) for k in vote_keys}
        if rank < n_done:
            tl = _timeline(rng, vp, first + 10 + 50 * rank + int(rng.integers(0, 20)))
            tl = _fit(tl, vp, top, last - 40)
            groups[code] = _Group(tl, top, {0: 1.0}, 10, shares, floor=top)
        elif rank < len(order) - n_wait:
            k = rank - n_done
            reach = min(under_way[k * len(under_way) // (len(order) - n_done - n_wait)], top - 1)
            # the village reached its stage some weeks or months ago; earlier stages
            # lie before that, squeezed if they would start before the first day
            tl = _timeline(rng, vp, first)
            reached = last - int(rng.integers(20, 240))
            tl = tl + (reached - tl[reach])
            if tl[0] < first:
                tl = _fit(tl - (tl[0] - first), vp, reach, reached)
            spread = {-3: 0.05, -2: 0.10, -1: 0.20, 0: 0.52, 1: 0.13}
            groups[code] = _Group(tl, reach, spread, 12, shares)
        else:
            groups[code] = _Group(np.array([first]), -1, {0: 1.0}, 0, shares)

    # Parks: two plans approved park-wide, then acquisition and clearance parcel by parcel.
    pp = cat.pipeline_for("park")
    park_start = {"digital": (2022, 3), "hsr_ai": (2023, 1), "coastal": (2024, 2)}
    park_reach = {"digital": 3, "hsr_ai": 2, "coastal": 1}
    for code in PARKS:
        y, m = park_start[code]
        tl = _timeline(rng, pp, dt.date(y, m, 1).toordinal() + int(rng.integers(0, 90)))
        reach = min(park_reach[code], int(np.searchsorted(tl, last, side="right")) - 1)
        groups[code] = _Group(tl, reach, {-1: 0.25, 0: 0.5, 1: 0.2, 2: 0.05}, 40, {}, floor=0)

    # Single sites: each its own timeline and a reached stage spread over its pipeline.
    singles = {
        "low_efficiency": [-1, 0, 0, 1, 1, 2, 2, 3, 3, 4, 5],
        "ministry": [0, 1, 1, 2, 3, 4, 5],
        "landmark": [4, 3, 3, 2, 1],
    }
    for kind, pool in singles.items():
        pipe = cat.pipeline_for(kind)
        codes = [p.code for p in plans if p.kind == kind]
        targets = [pool[i] for i in rng.permutation(len(pool))]
        for code, target in zip(codes, targets):
            start = first + int(rng.integers(0, 900 if kind != "low_efficiency" else 1200))
            tl = _timeline(rng, pipe, start)
            target = min(target, len(pipe.stages) - 1)
            if target >= 0:
                tl = _fit(tl, pipe, target, last - 30)
            groups[code] = _Group(tl, target, {0: 1.0}, 0, {})
    return groups


def _stages_and_events(lay: Layout, plans: list[_Plan], cat: Catalog, seed: int):
    """Each parcel's stage history (advance events, block events) and resulting state."""
    groups = _groups(lay, plans, cat, seed)
    rng = district_rng(seed, "history")
    last = LAST_DAY.toordinal()
    staff_rng = district_rng(seed, "staff")
    units = sorted({p.unit for p in plans})
    pool = list(STAFF)
    staff = {u: [pool[i] for i in staff_rng.choice(len(pool), 2, replace=False)] for u in units}

    states = {}
    events = []
    for p in plans:
        pipe = cat.pipeline_for(p.kind)
        g = groups[p.group]
        idx = -1  # the group has not started: nor has the parcel
        if g.reach >= 0:  # parcels cluster around their group's stage
            offset = list(g.spread)[int(rng.choice(len(g.spread), p=list(g.spread.values())))]
            idx = min(max(g.reach + offset, g.floor, -1), len(pipe.stages) - 1)
        dates = []
        for i in range(idx + 1):
            st = pipe.stages[i]
            d = int(g.timeline[i])
            if g.jitter and st.key not in GROUP_WIDE:
                d += int(rng.integers(0, g.jitter + 1))
            if dates:
                d = max(d, dates[-1] + max(1, st.min_days))
            dates.append(d)
        while dates and dates[-1] > last:  # nothing recorded after the last business day
            dates.pop()
        idx = len(dates) - 1
        prev = None
        note = None
        for i, d in enumerate(dates):
            st = pipe.stages[i]
            share = None
            if st.min_share is not None:
                share = g.shares.get(st.key) or _share(rng, st.min_share)
            fmt = {"share": share or 0.0, "industry": p.extra.get("industry", ""), "owner": p.extra.get("owner", "")}
            note = NOTES.get(pipe.key, {}).get(st.key, "推进至" + st.label_zh).format(**fmt)
            events.append(dict(parcel=p.code, action="advance", from_stage=prev, to_stage=st.key,
                               event_date=_date(d), recorded_by=staff[p.unit][int(rng.integers(2))],
                               unit=p.unit, note=note, reason=None, share=share, _seq=i))
            prev = st.key
        states[p.code] = dict(stage=pipe.keys[idx] if idx >= 0 else None,
                              stage_date=_date(dates[-1]) if dates else None, note=note,
                              blocked=0, blocked_reason=None, last=dates[-1] if dates else None)

    # 卡点: a few percent of the parcels that are under way, mostly at signing and demolition.
    cand, weight = [], []
    for p in plans:
        s = states[p.code]
        pipe = cat.pipeline_for(p.kind)
        if s["stage"] is None or s["stage"] == pipe.keys[-1] or last - s["last"] < 10:
            continue
        cand.append(p)
        weight.append(BLOCK_WEIGHT.get(pipe.stage(s["stage"]).phase, 1.0))
    n_block = min(len(cand), round(BLOCK_SHARE * len(plans)))
    weight = np.array(weight) / sum(weight)
    for i in sorted(rng.choice(len(cand), n_block, replace=False, p=weight)):
        p = cand[i]
        s = states[p.code]
        pipe = cat.pipeline_for(p.kind)
        phase = pipe.stage(s["stage"]).phase
        reasons = BLOCK_REASONS.get(p.kind, BLOCK_REASONS.get(phase, BLOCK_REASONS["prep"]))
        reason = reasons[int(rng.integers(len(reasons)))]
        d = s["last"] + int(rng.integers(7, min(180, last - s["last"]) + 1))
        events.append(dict(parcel=p.code, action="block", from_stage=s["stage"], to_stage=s["stage"],
                           event_date=_date(d), recorded_by=staff[p.unit][int(rng.integers(2))], unit=p.unit,
                           note=BLOCK_NOTE, reason=reason, share=None, _seq=99))
        s.update(blocked=1, blocked_reason=reason)

    ev = pd.DataFrame(events).sort_values(["event_date", "parcel", "_seq"], kind="stable").reset_index(drop=True)
    # recorded the same day, in office hours (09:00–17:30 Beijing = 01:00–09:30 UTC), in id order
    trng = district_rng(seed, "clock")
    times = np.empty(len(ev), dtype=object)
    for date, idx in ev.groupby("event_date", sort=True).indices.items():
        secs = np.sort(trng.choice(30600, len(idx), replace=False)) + 3600
        for i, sec in zip(idx, secs):
            times[i] = f"{date}T{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}+00:00"
    ev.insert(5, "recorded_at", times)
    for code, row in ev.groupby("parcel").tail(1).set_index("parcel").iterrows():
        states[code].update(updated_at=row["recorded_at"], updated_by=row["recorded_by"])
    ev = ev.drop(columns="_seq")
    ev["share"] = ev["share"].astype(float)
    return states, ev


def _land_use(p: _Plan, stage: str | None, cat: Catalog) -> str:
    """Current land use: what is there before clearance, what is being made after."""
    if stage is None or p.kind in ("ministry", "landmark"):
        return p.base_use
    pipe = cat.pipeline_for(p.kind)
    st = pipe.stage(stage)
    if not st.past_clearance:
        return p.base_use
    if p.kind == "village":
        return {"clearance": "净地（待供应）", "land_supply": "净地（已供应）", "construction": "在建工地"}.get(
            stage, "城镇住宅用地（回迁安置）")
    return {"started": "工业用地（在建）", "production": "工业用地"}.get(stage, "工业用地（净地）")


# --------------------------------------------------------------------------- assembling
def _to_store_crs(geoms, lay: Layout) -> gpd.GeoSeries:
    """Local metres → GK zone 40 → EPSG:4490, as valid MultiPolygons (Points stay Points)."""
    gs = gpd.GeoSeries(list(geoms), crs=WORK_CRS).translate(*lay.origin).to_crs(STORE_CRS)
    out = []
    for g in gs:
        if isinstance(g, Point):
            out.append(g)
            continue
        if not g.is_valid:  # reprojection can, very rarely, fold a tiny spike
            g = shapely.make_valid(g)
        out.append(_multi(g))
    return gpd.GeoSeries(out, crs=STORE_CRS)


def _frame(rows: list[dict], geoms, lay: Layout) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=_to_store_crs(geoms, lay).values, crs=STORE_CRS)


@dataclass
class Demo:
    """Everything ``build_demo`` writes, in memory (EPSG:4490)."""

    layout: Layout
    layers: dict[str, gpd.GeoDataFrame]
    events: pd.DataFrame
    meta: pd.DataFrame


def generate(seed: int = 2026, catalog: Catalog | None = None) -> Demo:
    """The whole demo district in memory: context layers, parcels, events, meta."""
    cat = catalog or load_catalog()
    lay = build_layout(seed)
    plans = _plan_parcels(lay, seed)
    states, events = _stages_and_events(lay, plans, cat, seed)

    layers = {}
    layers["district"] = _frame([{"name": DISTRICT_NAME[0], "name_en": DISTRICT_NAME[1]}], [lay.district], lay)
    layers["sea"] = _frame([{"name": "示例海域（虚构）", "name_en": "Sea (fictional)"}], [lay.sea], lay)
    layers["zones"] = _frame(
        [{"code": c, "name": z[0], "name_en": z[1], "strategy": z[2], "roles": z[3], "roles_en": z[4]}
         for c, z in ZONES.items()], [lay.zones[c] for c in ZONES], lay)
    layers["devzone"] = _frame([{"code": "edz", "name": "经济开发区", "name_en": "Economic Development Zone"}],
                               [lay.devzone], lay)
    layers["parks"] = _frame([{"code": c, "name": v[0], "name_en": v[1], "industry": v[2]} for c, v in PARKS.items()],
                             [lay.parks[c] for c in PARKS], lay)
    layers["villages"] = _frame([{"code": v.code, "name": v.name, "name_en": v.name_en, "zone": v.zone}
                                 for v in lay.villages], [v.geom for v in lay.villages], lay)
    layers["points"] = _frame(
        [{"code": "hsr_south", "name": "高铁南站", "name_en": "HSR South Station", "kind": "station"},
         {"code": "government", "name": "区政府", "name_en": "District Government", "kind": "government"}],
        [lay.station, lay.government], lay)

    zone_codes = list(ZONES)
    zone_geoms = np.asarray([lay.zones[c] for c in zone_codes], dtype=object)
    rows = []
    for p in plans:
        s = states[p.code]
        c = p.geom.centroid
        inside = shapely.contains(zone_geoms, c)
        zone = zone_codes[int(np.argmax(inside))] if inside.any() else zone_codes[
            int(np.argmin(shapely.distance(zone_geoms, c)))]
        rows.append({
            "code": p.code, "name": p.name, "kind": p.kind, "zone": zone, "village": p.village, "park": p.park,
            "unit": p.unit, "owner": p.owner, "land_use": _land_use(p, s["stage"], cat), "stage": s["stage"],
            "stage_date": s["stage_date"], "blocked": s["blocked"], "blocked_reason": s["blocked_reason"],
            "note": s["note"], "area_m2": 0.0, "version": 1, "updated_at": s.get("updated_at"),
            "updated_by": s.get("updated_by"),
        })
    parcels = _frame(rows, [p.geom for p in plans], lay)
    parcels["area_m2"] = areas_m2(parcels)
    parcels["blocked"] = parcels["blocked"].astype("int64")
    parcels["version"] = parcels["version"].astype("int64")
    layers["parcels"] = parcels

    meta = pd.DataFrame({"key": ["demo", "seed", "data_source", "generator", "data_version"],
                         "value": ["1", str(seed), DATA_SOURCE, GENERATOR, "0"]})
    return Demo(lay, layers, events, meta)


def _summary(demo: Demo) -> dict:
    parcels = demo.layers["parcels"]
    kinds = parcels["kind"].value_counts()
    return {
        "seed": int(demo.layout.seed),
        "villages": len(demo.layers["villages"]),
        "parcels": len(parcels),
        "village_parcels": int(kinds.get("village", 0)),
        "park_parcels": int(kinds.get("park", 0)),
        "low_efficiency": int(kinds.get("low_efficiency", 0)),
        "ministry": int(kinds.get("ministry", 0)),
        "landmarks": int(kinds.get("landmark", 0)),
        "not_started": int(parcels["stage"].isna().sum()),
        "blocked": int(parcels["blocked"].sum()),
        "events": len(demo.events),
        "last_event": str(demo.events["event_date"].max()),
    }


def build_demo(gpkg_path, seed: int = 2026) -> dict:
    """Write the fictional demo district to a new GeoPackage at ``gpkg_path``; return counts.

    The file is written next to the target and then renamed over it, so a
    failure never leaves a half-written store behind.
    """
    target = Path(gpkg_path)
    demo = generate(seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = tempfile.mkdtemp(prefix=".demo-", dir=target.parent)
    tmp = Path(tmpdir) / target.name
    # GDAL stamps gpkg_contents.last_change with the clock unless told a date:
    # use the data's own last business day so that rebuilds are identical.
    old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": demo.events["event_date"].max() + "T00:00:00.000Z"})
    try:
        first = True
        for name, gdf in demo.layers.items():
            gdf.to_file(tmp, engine="pyogrio", driver="GPKG", layer=name,
                        layer_options={"GEOMETRY_NAME": "geom", "DESCRIPTION": "示例数据（虚构）"},
                        # GeoPackage 1.2: opens without warnings in older GDAL/QGIS too
                        **({"dataset_options": {"VERSION": "1.2"}} if first else {}))
            first = False
        pyogrio.write_dataframe(demo.events, tmp, layer="stage_events", driver="GPKG",
                                layer_options={"FID": "id", "DESCRIPTION": "示例数据（虚构）"})
        pyogrio.write_dataframe(demo.meta, tmp, layer="meta", driver="GPKG",
                                layer_options={"DESCRIPTION": "示例数据（虚构）"})
        add_demo_accounts(tmp, seed, demo.events["event_date"].max() + "T00:00:00.000Z")
        os.replace(tmp, target)
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": old})
        shutil.rmtree(tmpdir, ignore_errors=True)
    out = _summary(demo)
    out["path"] = str(target)
    return out


EVIDENCE_COLUMNS = tuple(c for c, _ in schema.ATTACHMENT_COLUMNS if c not in ("idempotency_key", "supersedes",
                                                                             "superseded_by", "withdrawn_at",
                                                                             "withdrawn_by", "withdrawn_reason")
                         ) + ("thumbnail", "data")

# Demo accounts, with the passwords README.md gives. Fictional, for trying the roles out.
DEMO_USERS = (
    # username, display name, role, password, zone whose villages it edits
    ("admin", "管理员（示例）", "admin", "renewal-admin", None),
    ("viewer", "查看者（示例）", "viewer", "renewal-viewer", None),
    ("leader", "督查室（示例）", "leader", "renewal-leader", None),
    ("editor_north", "北部编辑（示例）", "editor", "renewal-north", "north"),
    ("editor_central", "中部编辑（示例）", "editor", "renewal-central", "central"),
    ("editor_south", "南部编辑（示例）", "editor", "renewal-south", "south"),
)


def add_demo_accounts(gpkg_path, seed: int, stamp: str) -> None:
    """Apply the store's migrations to a fresh demo file and add the demo accounts.

    Hashes use salts derived from the seed and every timestamp is ``stamp``,
    so that rebuilds stay byte-identical.
    """


    con = sqlite3.connect(gpkg_path, isolation_level=None)
    try:
        register_functions(con)
        con.execute("BEGIN")
        for version in schema.pending(1):
            for sql in schema.statements(version, "gpkg"):
                con.execute(sql)
        con.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(schema.LATEST),))
        villages = con.execute("SELECT code, zone FROM villages ORDER BY code").fetchall()
        for username, display, role, password, zone in DEMO_USERS:
            con.execute("INSERT INTO users (username, display_name, role, password_hash, failed_count, created_at,"
                        " disabled) VALUES (?,?,?,?,0,?,0)",
                        (username, display, role, hash_password(password, demo_salt(seed, username)), stamp))
            con.executemany("INSERT INTO assignments (username, scope, code) VALUES (?, 'village', ?)",
                            [(username, code) for code, z in villages if z == zone])
        add_demo_plans(con, seed, load_catalog(), LAST_DAY)  # 年初目标, 承诺书目标, 百日攻坚, 督办
        add_demo_projects(con, seed, load_project_config(), LAST_DAY)  # 重点项目, their plans and reports
        # minutes and agreements on the gated stages' events, a site photo per village
        add_demo_evidence(con, seed, load_catalog(), EVIDENCE_COLUMNS)
        con.execute("UPDATE gpkg_contents SET last_change = ?", (stamp,))
        con.execute("COMMIT")
    finally:
        con.close()


# --------------------------------------------------------------------------- raster
PIXEL = 10.0  # metres
MARGIN = 2000.0  # metres of neighbouring land and sea around the district

(FARM, SEA, LAKE, FOREST, VILLAGE, INDUSTRY, URBAN, ROAD, BEACH, GREEN, RAIL, BARE, SITE, CEMENT,
 NEWTOWN) = range(15)
COLOURS = {
    FOREST: (74, 104, 60), VILLAGE: (178, 166, 148), INDUSTRY: (168, 170, 170), URBAN: (158, 154, 150),
    ROAD: (214, 208, 196), BEACH: (224, 210, 172), GREEN: (112, 150, 86), RAIL: (118, 108, 100),
    BARE: (190, 166, 128), SITE: (176, 168, 150), CEMENT: (186, 184, 178), LAKE: (58, 104, 138),
    NEWTOWN: (172, 176, 182),
}
FIELDS = np.array([(170, 184, 118), (196, 190, 132), (150, 170, 100), (206, 198, 156), (132, 158, 92)], np.float32)


def _noise2d(rng, shape, cell: int) -> np.ndarray:
    """Value noise in [0, 1]: random values every ``cell`` pixels, smoothly interpolated."""
    h, w = shape
    coarse = rng.random((h // cell + 2, w // cell + 2)).astype(np.float32)

    def axis(n):
        u = np.arange(n, dtype=np.float32) / cell
        i = u.astype(int)
        f = u - i
        return i, f * f * (3 - 2 * f)

    ix, fx = axis(w)
    iy, fy = axis(h)
    rows = coarse[:, ix] * (1 - fx) + coarse[:, ix + 1] * fx
    return rows[iy] * (1 - fy)[:, None] + rows[iy + 1] * fy[:, None]


def _upsample(a: np.ndarray, step: int, shape) -> np.ndarray:
    """Bilinear upsampling of a grid sampled every ``step`` pixels to ``shape``."""

    def axis(n, m):
        u = np.minimum(np.arange(n, dtype=np.float32) / step, m - 1.001)
        i = u.astype(np.int32)
        return i, (u - i).astype(np.float32)

    iy, fy = axis(shape[0], a.shape[0])
    ix, fx = axis(shape[1], a.shape[1])
    rows = a[iy] * (1 - fy)[:, None] + a[iy + 1] * fy[:, None]
    return rows[:, ix] * (1 - fx) + rows[:, ix + 1] * fx


def _fbm(rng, xs, ys, cells, weights, step: int = 3) -> np.ndarray:
    """Fractal value noise in [0, 1] on the grid ``xs`` × ``ys`` (metres).

    Each octave's lattice is rotated by a random angle, so that the octaves'
    grid artefacts do not line up into a maze of right angles. The noise is
    smooth at the scale of its finest cell, so it is computed every ``step``
    pixels and interpolated (ten times faster, the same look).
    """
    cx, cy = xs[::step], ys[::step]
    out = np.zeros((len(cy), len(cx)), np.float32)
    for cell, weight in zip(cells, weights):
        a = rng.uniform(0, np.pi)
        c, s = np.float32(np.cos(a)), np.float32(np.sin(a))
        u = (cx[None, :] * c - cy[:, None] * s) / cell
        v = (cx[None, :] * s + cy[:, None] * c) / cell
        u -= u.min()
        v -= v.min()
        table = rng.random((int(v.max()) + 2, int(u.max()) + 2)).astype(np.float32)
        iu, iv = u.astype(np.int32), v.astype(np.int32)
        fu, fv = u - iu, v - iv
        fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
        out += weight * ((table[iv, iu] * (1 - fu) + table[iv, iu + 1] * fu) * (1 - fv)
                         + (table[iv + 1, iu] * (1 - fu) + table[iv + 1, iu + 1] * fu) * fv)
    return _upsample(out / sum(weights), step, (len(ys), len(xs)))


def _cover_frames(lay: Layout, gpkg_path) -> dict[str, gpd.GeoDataFrame]:
    """Land-cover polygons in GK metres: from the GeoPackage if given, else generated."""
    names = ("villages", "parks", "parcels")
    if gpkg_path is not None:
        meta = pyogrio.read_dataframe(gpkg_path, layer="meta")
        seed = dict(zip(meta["key"], meta["value"])).get("seed")
        if seed != str(lay.seed):  # the imagery would not match the parcels
            raise InputError("error.bad_store", path=str(gpkg_path),
                             detail=f"demo seed {seed}, basemap seed {lay.seed}")
        frames = {n: pyogrio.read_dataframe(gpkg_path, layer=n) for n in names}
    else:
        layers = generate(lay.seed).layers
        frames = {n: layers[n] for n in names}
    return {n: f.to_crs(WORK_CRS) for n, f in frames.items()}


def build_demo_raster(tif_path, seed: int = 2026, gpkg_path=None) -> dict:
    """Write an offline basemap GeoTIFF of the demo district (EPSG:4549, ~10 m, RGB JPEG).

    Procedural terrain (the southern hills, Phoenix Hill and Phoenix Lake) is
    hillshaded and blended with land-cover colours: sea north of the coast,
    fields, forest on the hills, villages and parks built up, cleared parcels
    bare. With ``gpkg_path`` the land cover follows that file (which must be
    the demo of the same seed); otherwise it is generated.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.features import rasterize
    from rasterio.transform import Affine

    lay = build_layout(seed)
    frames = _cover_frames(lay, gpkg_path)
    ox, oy = lay.origin
    minx, miny, maxx, maxy = lay.district.bounds
    x0 = math.floor((minx + ox - MARGIN) / 1000) * 1000
    y1 = math.ceil((maxy + oy + MARGIN) / 1000) * 1000
    w = int(math.ceil((maxx + ox + MARGIN - x0) / PIXEL))
    h = int(math.ceil((y1 - (miny + oy - MARGIN)) / PIXEL))
    transform = Affine(PIXEL, 0.0, x0, 0.0, -PIXEL, y1)
    # pixel centres in local metres, as 1-D axes (the grid is axis-aligned)
    xs = (x0 - ox + PIXEL * (np.arange(w, dtype=np.float32) + 0.5))
    ys = (y1 - oy - PIXEL * (np.arange(h, dtype=np.float32) + 0.5))
    rng = district_rng(seed, "raster")

    def burn(shapes, fill=0):
        shapes = [(g, v) for g, v in shapes if g is not None and not g.is_empty]
        if not shapes:
            return np.full((h, w), fill, np.uint8)
        return rasterize(shapes, out_shape=(h, w), transform=transform, fill=fill, dtype="uint8")

    def gk(geom):
        return affinity.translate(geom, ox, oy)

    # --- terrain: a gentle rise inland, hills with valleys, noise; the lake is flat water
    coast_at = np.interp(xs, lay.coast_x, lay.coast_y).astype(np.float32)
    inland = np.clip(coast_at[None, :] - ys[:, None], 0, None)
    elev = 3 + 0.0035 * inland + 14 * _noise2d(rng, (h, w), 120) + 4 * _noise2d(rng, (h, w), 30)
    hills = np.zeros((h, w), np.float32)
    for hx, hy, height, sx, sy in lay.hills:
        c0, c1 = np.searchsorted(xs, [hx - 4 * sx, hx + 4 * sx])
        r0, r1 = np.searchsorted(-ys, [-(hy + 4 * sy), -(hy - 4 * sy)])
        if c0 >= c1 or r0 >= r1:
            continue
        gx = np.exp(-0.5 * ((xs[c0:c1] - hx) / sx) ** 2)
        gy = np.exp(-0.5 * ((ys[r0:r1] - hy) / sy) ** 2)
        hills[r0:r1, c0:c1] += height * gy[:, None] * gx[None, :]
    # valleys cut into the hills: ridged noise at two scales, deeper where the hills are high
    ridged = 1 - np.abs(2 * _fbm(rng, xs, ys, (900, 420, 190, 90), (0.45, 0.3, 0.15, 0.1)) - 1)
    ridged = (ridged - ridged.min()) / max(float(np.ptp(ridged)), 1e-6)
    elev += hills * (0.75 + 0.4 * ridged)
    lake = burn([(gk(lay.lake), 1)]).astype(bool)
    if lake.any():
        elev[lake] = np.percentile(elev[lake], 5)
    sea = burn([(gk(lay.sea), 1)]).astype(bool)
    elev[sea] = 0

    # --- hillshade (sun from the north-west, 45° up), relief exaggerated 1.5×: the
    # cosine between the surface normal and the sun, without trigonometry per pixel
    dzdy, dzdx = np.gradient(elev * np.float32(1.5), np.float32(PIXEL))
    az, alt = np.radians(315), np.radians(45)
    sun = np.array([np.sin(az) * np.cos(alt), np.cos(az) * np.cos(alt), np.sin(alt)], np.float32)
    # rows run southwards, so -dzdy is the slope towards the north
    shade = (-dzdx * sun[0] + dzdy * sun[1] + sun[2]) / np.sqrt(dzdx * dzdx + dzdy * dzdy + 1)
    light = np.clip(0.25 + 0.75 * shade / sun[2], 0.35, 1.3).astype(np.float32)
    del dzdx, dzdy, shade

    # --- land cover; town and development zone are laid out in blocks
    X, Y = xs[None, :], ys[:, None]

    def blocks(bw, bh, street):
        """Per pixel: a hash in [0, 1) of its block, and whether it lies on a street."""
        bx, by = np.floor(X / bw).astype(np.int64), np.floor(Y / bh).astype(np.int64)
        hsh = (((bx * 73856093) ^ (by * 19349663) ^ (seed * 83492791)) % 1000) / 1000.0
        on_street = (np.mod(X, bw) < street) | (np.mod(Y, bh) < street)
        return hsh, on_street

    cls = np.full((h, w), FARM, np.uint8)
    cls[hills * (0.75 + 0.4 * ridged) + 70 * _fbm(rng, xs, ys, (300, 120), (0.6, 0.4)) > 110] = FOREST
    town = burn([(gk(lay.town), 1)]).astype(bool)
    tc = lay.town.centroid
    tb = lay.town.bounds
    dist = np.hypot((X - tc.x) / ((tb[2] - tb[0]) / 2), (Y - tc.y) / ((tb[3] - tb[1]) / 2))
    urban_hash, urban_street = blocks(180, 140, 14)
    cls[town & (urban_hash > 0.15 + 0.8 * dist)] = URBAN
    dev = burn([(gk(lay.devzone), 1)]).astype(bool)
    ind_hash, ind_street = blocks(320, 230, 18)
    dc, db = lay.devzone.centroid, lay.devzone.bounds
    dist = np.hypot((X - dc.x) / ((db[2] - db[0]) / 2), (Y - dc.y) / ((db[3] - db[1]) / 2))
    cls[dev & (ind_hash > 0.1 + 0.9 * dist)] = INDUSTRY
    del dist

    parcels = frames["parcels"]
    cat = load_catalog()
    shapes = [(g, VILLAGE) for g in frames["villages"].geometry]
    shapes += [(g, INDUSTRY) for g in frames["parks"].geometry]
    special = {"LM-ZOO": GREEN, "LM-BOT": GREEN, "LM-PHX": None, "LM-CEM": CEMENT, "LM-GOV": URBAN}
    for g, kind, stage, code in zip(parcels.geometry, parcels["kind"], parcels["stage"], parcels["code"]):
        if kind == "landmark":
            v = special.get(code, GREEN)
        elif kind == "ministry":
            v = URBAN
        else:
            st = cat.pipeline_for(kind).stage(stage) if isinstance(stage, str) and stage else None
            if st is None or not st.past_clearance:
                v = VILLAGE if kind == "village" else INDUSTRY
            elif st.phase == "cleared":
                v = BARE
            elif st.phase == "build" and stage != "resettlement":
                v = SITE
            else:
                v = NEWTOWN if kind == "village" else INDUSTRY
        if v is not None:
            shapes.append((g, v))
    burnt = burn(shapes, fill=255)
    cls[burnt != 255] = burnt[burnt != 255]
    roads = [(gk(r.buffer(12)), ROAD) for r in lay.roads] + [(gk(lay.railway.buffer(9)), RAIL)]
    burnt = burn(roads, fill=255)
    cls[burnt != 255] = burnt[burnt != 255]
    del burnt
    coast = LineString(np.c_[lay.coast_x, lay.coast_y])
    cls[burn([(gk(coast.buffer(60)), 1)]).astype(bool)] = BEACH
    cls[lake] = LAKE
    cls[sea] = SEA

    # --- colours: field patchwork, roofs and blocks, then the hillshade on land
    lut = np.zeros((256, 3), np.float32)
    for k, col in COLOURS.items():
        lut[k] = col
    rgb = lut[cls]
    farm = cls == FARM
    ang = np.where(_noise2d(rng, (h, w), 200)[farm] > 0.5, np.radians(8), np.radians(-28)).astype(np.float32)
    fx, fy = np.broadcast_to(X, (h, w))[farm], np.broadcast_to(Y, (h, w))[farm]
    u = np.floor((fx * np.cos(ang) + fy * np.sin(ang)) / 170).astype(np.int64)
    v = np.floor((-fx * np.sin(ang) + fy * np.cos(ang)) / 60).astype(np.int64)
    rgb[farm] = FIELDS[((u * 73856093) ^ (v * 19349663)) % len(FIELDS)]
    del ang, u, v, fx, fy, farm
    # forest: darker in the valleys, lighter on the ridges
    forest = cls == FOREST
    rgb[forest] *= (0.85 + 0.3 * ridged[forest])[:, None]
    # villages: red-tiled and grey roofs in rows of houses
    roof = ((np.floor(X / 14).astype(np.int64) * 92821) ^ (np.floor(Y / 11).astype(np.int64) * 68917)) % 7
    vill = cls == VILLAGE
    rgb[vill & (roof < 2)] = (164, 96, 78)
    rgb[vill & (roof == 2)] = (140, 140, 136)
    # town blocks: mixed greys, green courtyards, pale streets
    urb = cls == URBAN
    for lo, hi, col in ((0.0, 0.3, (140, 138, 136)), (0.3, 0.55, (176, 170, 160)), (0.55, 0.7, (120, 140, 110))):
        rgb[urb & (urban_hash >= lo) & (urban_hash < hi)] = col
    rgb[urb & urban_street] = COLOURS[ROAD]
    # industry: big sheds, some with blue roofs, on a grid of estate roads
    ind = cls == INDUSTRY
    shed = ((np.floor(X / 90).astype(np.int64) * 31337) ^ (np.floor(Y / 45).astype(np.int64) * 7919)) % 5
    rgb[ind & (shed == 0)] = (132, 152, 172)
    rgb[ind & (shed == 1)] = (200, 200, 194)
    rgb[ind & (shed == 2)] = (188, 180, 166)
    rgb[ind & ind_street] = COLOURS[ROAD]
    del roof, shed, urban_hash, urban_street, ind_hash, ind_street, ridged
    texture = 0.94 + 0.12 * _noise2d(rng, (h, w), 3)
    rgb *= np.where(sea | lake, texture, texture * light)[..., None]
    del texture, light
    # the sea: lighter over the shallows near the coast
    r, c = np.nonzero(sea)
    depth = np.clip((ys[r] - coast_at[c]) / 2500, 0, 1)
    shallow = np.array((86, 140, 168), np.float32)
    deep = np.array((30, 76, 118), np.float32)
    waves = 0.97 + 0.06 * _noise2d(rng, (h, w), 40)[r, c]
    rgb[r, c] = (shallow + (deep - shallow) * depth[:, None]) * waves[:, None]
    out = np.clip(rgb, 0, 255).astype(np.uint8).transpose(2, 0, 1)

    target = Path(tif_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = tempfile.mkdtemp(prefix=".demo-", dir=target.parent)
    tmp = Path(tmpdir) / target.name
    profile = dict(driver="GTiff", width=w, height=h, count=3, dtype="uint8", crs=WORK_CRS, transform=transform,
                   tiled=True, blockxsize=256, blockysize=256, compress="JPEG", photometric="YCBCR",
                   jpeg_quality=80, interleave="pixel")
    try:
        with rasterio.open(tmp, "w", **profile) as ds:
            ds.write(out)
            ds.update_tags(demo="1", data_source=DATA_SOURCE, seed=str(seed), generator=GENERATOR)
            ds.build_overviews([2, 4, 8, 16], Resampling.average)
            ds.update_tags(ns="rio_overview", resampling="average")
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return {"path": str(target), "width": w, "height": h, "crs": WORK_CRS, "bytes": target.stat().st_size}
