"""A district's real cadastre (地籍宗地) into the store, from the files land bureaus deliver.

Read and checked like a parcel import (``gis.importer``: safe staging, any
format it reads, the text encoding found or given, the CRS from the file, the
user or the coordinates, polygons repaired, codes present and unique), then
mapped onto the cadastre's fields and written whole with
:func:`gis.cadastre.write_cadastre`, replacing the previous cadastre:

- ``code``: 宗地代码 (ZDDM, or 地籍号/宗地号/BSM …);
- ``land_use``: the first-level class of GB/T 21010 (耕地 … 其他土地), what the
  map colours by: from a class name, a second-level name (城镇住宅用地 →
  住宅用地) or a land-use code (0701 → 住宅用地); an unknown value is kept;
- ``owner_type``: the 权属性质 of the 三调 code table (QSXZ 10 国有土地所有权, 20
  国有土地使用权, 30–34 集体土地所有权 by owner level, 40 集体土地使用权), from the
  code or the label; 国有 / 集体 stay; anything else is kept as it is;
- ``area_m2``: computed in each parcel's Gauss-Krüger zone, never taken on trust.

Fields are found by the names of the national standards (ZDDM/DJH of the cadastral
database, DKBM of the rural land-contract database, BSM/TBBH and DLBM/DLMC/QSXZ of the
三调 database) and their Chinese names. The report warns, as a parcel import does, about
parcels outside the district and parcels without a land use.

With accounts on only an admin may replace the cadastre; the write is one
line of the audit trail.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gis.base.clock import office_today
from gis.base.errors import InputError
from gis.base.i18n import t
from gis.base.units import areas_m2
from gis.io.importer import (
    ImportOptions,
    apply_mapping,
    check_polygonal,
    clean_geometries,
    outside_warnings,
    start_report,
)
from gis.io.readers import cell_text, column_key, file_failures, read_layer
from gis.io.uploads import stage_path
from gis.store.cadastre import QSXZ
from gis.store.open import write_cadastre

TARGETS = ("code", "land_use", "owner_type")
ALIASES = {
    # 宗地代码/地籍号/不动产单元号 (cadastral database), 地块编码 (land-contract database), 标识码 and
    # 图斑编号 (三调; BSM is unique in a database, TBBH only within a village, so BSM first)
    "code": ("宗地代码", "zddm", "宗地编码", "地籍号", "djh", "宗地号", "zdh", "不动产单元号", "bdcdyh", "地块编码", "dkbm",
             "地块编号", "dkbh", "标识码", "bsm", "图斑编号", "tbbh", "code", "parcel_code"),
    "land_use": ("地类名称", "dlmc", "地类", "土地用途", "tdyt", "用途", "yt", "实际用途", "sjyt", "批准用途", "pzyt",
                 "地类编码", "dlbm", "land_use", "landuse"),
    "owner_type": ("权属性质", "qsxz", "所有权性质", "syqxz", "权属", "权属类型", "owner_type", "ownership"),
}

# GB/T 21010-2017: first-level classes by code, and the second-level names under each
CLASSES = {
    "01": ("耕地", "水田 水浇地 旱地"),
    "02": ("园地", "果园 茶园 橡胶园 其他园地"),
    "03": ("林地", "乔木林地 竹林地 红树林地 森林沼泽 灌木林地 灌丛沼泽 其他林地 有林地"),
    "04": ("草地", "天然牧草地 沼泽草地 人工牧草地 其他草地"),
    "05": ("商服用地", "零售商业用地 批发市场用地 餐饮用地 旅馆用地 商务金融用地 娱乐用地 其他商服用地"),
    "06": ("工矿仓储用地", "工业用地 采矿用地 盐田 仓储用地"),
    "07": ("住宅用地", "城镇住宅用地 农村宅基地"),
    "08": ("公共管理与公共服务用地", "机关团体用地 新闻出版用地 教育用地 科研用地 医疗卫生用地 社会福利用地 "
                              "文化设施用地 体育用地 公用设施用地 公园与绿地"),
    "09": ("特殊用地", "军事设施用地 使领馆用地 监教场所用地 宗教用地 殡葬用地 风景名胜设施用地"),
    "10": ("交通运输用地", "铁路用地 轨道交通用地 公路用地 城镇村道路用地 交通服务场站用地 农村道路 机场用地 "
                       "港口码头用地 管道运输用地"),
    "11": ("水域及水利设施用地", "河流水面 湖泊水面 水库水面 坑塘水面 沿海滩涂 内陆滩涂 沟渠 沼泽地 水工建筑用地 "
                          "冰川及永久积雪"),
    "12": ("其他土地", "空闲地 设施农用地 田坎 盐碱地 沙地 裸土地 裸岩石砾地"),
}
_FIRST = {name for name, _ in CLASSES.values()}
_BY_NAME = {sub: name for name, subs in CLASSES.values() for sub in subs.split()}


def land_use_class(value) -> str:
    """The first-level GB/T 21010 class of a land-use name or code; the value itself when unknown."""
    v = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()
    if v in _FIRST:
        return v
    if v in _BY_NAME:
        return _BY_NAME[v]
    digits = v.split(".")[0]
    if digits.isdigit() and len(digits) in (2, 3, 4):  # 07; 071 (GB/T 21010-2007); 0701 (2017)
        first = CLASSES.get(digits[:2])
        if first:
            return first[0]
    return v


def owner_type_of(value) -> str:
    """The 权属性质 label of the 三调 code table for a QSXZ code or label (20 → 国有土地使用权); else the value.

    The label names its code (``QSXZ_OF``), so the code is kept; 国有 and 集体 stay as they are.
    """
    v = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()
    code = v.split(".")[0] if v.replace(".", "", 1).isdigit() else v  # 20.0 from a numeric column
    if code in QSXZ:
        return QSXZ[code]
    return v


@dataclass
class CadastreOptions:
    layer: str | None = None
    crs: str | int | None = None
    encoding: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)  # target → source column ("" to leave one out)
    gcj02: bool = False
    lang: str = "zh"


def suggest_cadastre_mapping(columns) -> dict[str, str]:
    """Source columns for code, land_use and owner_type, from the names land bureaus use."""
    by_norm = {column_key(c): c for c in columns}
    out = {}
    for target, names in ALIASES.items():
        hit = next((by_norm[column_key(n)] for n in names if column_key(n) in by_norm), None)
        if hit is not None:
            out[target] = hit
    return out


def prepare_cadastre(store, upload, options: CadastreOptions | None = None) -> tuple[gpd.GeoDataFrame, dict]:
    """Read and check a cadastre layer of a staged upload; nothing is written.

    Returns the cadastre (``code, land_use, owner_type, area_m2``, EPSG:4490)
    and the report (as ``renewal import``'s: ``features_read``,
    ``features_imported``, ``repaired``, ``linearised``, ``rejected`` with rows
    and reasons, ``warnings``, ``crs``, ``crs_source``, ``encoding``, and the
    ``mapping`` used).

    Raises:
        InputError, UnknownCRSError: as a parcel import.
    """
    opts = options or CadastreOptions()
    with file_failures(upload.source_name):
        return _prepare_cadastre(store, upload, opts)


def _prepare_cadastre(store, upload, opts: CadastreOptions) -> tuple[gpd.GeoDataFrame, dict]:
    ref = upload.layer(opts.layer)
    raw = read_layer(upload, ref, opts.encoding)
    check_polygonal(raw, ref.name)
    gdf = raw.gdf
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    mapping = apply_mapping(suggest_cadastre_mapping(columns), opts.mapping, columns, TARGETS)

    def column(target):
        src = mapping.get(target)
        return cell_text(gdf[src]) if src is not None else np.full(len(gdf), "", dtype=object)

    codes = column("code")
    rows, warnings = start_report(raw, codes, opts.lang)
    choice, work, ok, repaired, _ = clean_geometries(
        store, gdf, codes, rows, ImportOptions(crs=opts.crs, gcj02=opts.gcj02, lang=opts.lang), raw.format)
    good = np.flatnonzero(ok)
    geoms = work[good]
    out = gpd.GeoDataFrame({
        "code": codes[good],
        "land_use": [land_use_class(v) for v in column("land_use")[good]],
        "owner_type": [owner_type_of(v) for v in column("owner_type")[good]],
        "area_m2": np.round(areas_m2(gpd.GeoSeries(geoms, crs=4490)), 1) if len(good) else np.array([], float),
    }, geometry=list(geoms), crs=4490)
    if len(good):
        warnings.extend(outside_warnings(store, work, good, codes, opts.lang))
    no_use = np.flatnonzero(out["land_use"].to_numpy(dtype=object) == "")
    if len(no_use):
        warnings.append({"key": "cadastre.warn_empty_land_use", "count": int(len(no_use)),
                         "message": t("cadastre.warn_empty_land_use", opts.lang, n=int(len(no_use))),
                         "rows": [int(good[i]) + 1 for i in no_use[:200]],
                         "codes": [str(out["code"].iat[i]) for i in no_use[:200]]})
    rejected = sorted(rows.rejected.values(), key=lambda r: r["row"])
    report = {
        "source": upload.source_name, "layer": ref.name, "format": raw.format,
        "features_read": int(len(gdf)), "features_imported": int(len(out)),
        "repaired": len(repaired), "repaired_rows": repaired[:200],
        "linearised": raw.linearised, "surfaces": raw.surfaces,
        "rejected": [{"row": r["row"], "code": r["code"], "reason": r["reason"]} for r in rejected],
        "warnings": rows.row_warnings[:200] + warnings,
        "crs": choice.epsg, "crs_name": choice.crs.name, "crs_source": choice.source,
        "crs_confirm": bool(choice.confirm),
        "encoding": raw.encoding, "encoding_source": raw.encoding_source,
        "mapping": mapping,
        "land_use": {k: int(v) for k, v in pd.Series(out["land_use"]).value_counts().items()},
        "dry_run": True,
    }
    return out, report


def import_cadastre(store, path: Path | str, options: CadastreOptions | None = None, *, by: str = "",
                    dry_run: bool = False) -> dict:
    """Stage, check and (unless ``dry_run``) write a cadastre file, replacing the store's cadastre.

    Raises:
        InputError, UnknownCRSError: a file that cannot be read or has nothing to import.
        PermissionRefused: ``by`` is not an admin of a store with accounts.
    """

    opts = options or CadastreOptions()
    with stage_path(path) as upload:
        gdf, report = prepare_cadastre(store, upload, opts)
    if not len(gdf):
        raise InputError("import.nothing_to_import", read=report["features_read"])
    if dry_run:
        return report
    note = t("cadastre.import_note", "zh", source=report["source"], date=office_today().isoformat())
    report.update(write_cadastre(store, gdf, by=by or None, note=note), dry_run=False)
    return report
