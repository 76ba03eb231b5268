"""The parcel table under the map (rows, CSV), and the map's area selection (Leaflet.draw, vendored)."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import branca
import folium
import folium.elements
import folium.plugins
import shapely

from gis.io.exporter import export
from gis.io.parcel_table import parcel_table, store_names, table_csv
from gis.maps.area_select import DRAW_URL, add_area_select, is_drawing, parcels_in_area
from gis.maps.mapview import build_map
from tests.test_cli import run

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "static" / "vendor" / "leaflet-draw"


def test_the_table_has_labels_areas_and_reasons(any_store):
    table = parcel_table(any_store.parcels(geometry=False), any_store.catalog, store_names(any_store))
    assert list(table["code"]) == ["HSR-001", "MIN-01", "V01-001", "V01-002", "V01-003"]
    row = table.set_index("code").loc["V01-003"]
    assert row["kind"] == "旧村改造地块" and row["zone"] == "南部" and row["village"] == "<b>东岙村</b>"
    assert row["stage"] == "签约" and row["stage_date"].date().isoformat() == "2025-06-01"
    assert row["blocked_reason"] == "个别户未签约" and bool(row["blocked"])
    assert table.set_index("code").loc["HSR-001", "village"] == "高铁南站电子信息和人工智能产业园"  # the park
    assert table.set_index("code").loc["MIN-01", "stage"] == "未启动"
    en = parcel_table(any_store.parcels(geometry=False), any_store.catalog, store_names(any_store, "en"), "en")
    assert en.set_index("code").loc["V01-003", "stage"] == "Agreements signed"


def test_csv_is_excel_ready_and_defuses_formulas(any_store):
    parcels = any_store.parcels(geometry=False)
    parcels.loc[parcels["code"] == "V01-001", "name"] = "=HYPERLINK(\"http://x\")"
    data = table_csv(parcel_table(parcels, any_store.catalog, store_names(any_store)))
    assert data.startswith("\ufeff".encode())  # the BOM Excel needs to read UTF-8
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:4] == ["编号", "名称", "当前阶段", "阶段日期"] and len(rows) == 6
    assert rows[3][1] == "'=HYPERLINK(\"http://x\")" and rows[5][3] == "2025-06-01"


def test_export_csv_of_a_selection(any_store, tmp_path):
    out = export(any_store, "csv", tmp_path / "t.csv", codes=["V01-002", "V01-003"])
    assert out["parcels"] == 2
    rows = list(csv.reader(io.StringIO((tmp_path / "t.csv").read_text(encoding="utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ["V01-002", "V01-003"]
    res = run("export", "-o", str(tmp_path / "all.csv"), store=any_store.path or any_store.url)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["parcels"] == 5


# ------------------------------------------------------------------ area selection
def _rectangle(x0, y0, x1, y1) -> dict:
    return {"type": "Feature", "properties": {},
            "geometry": shapely.geometry.mapping(shapely.box(x0, y0, x1, y1))}


def test_a_drawn_rectangle_selects_the_parcels_inside(tiny_gpkg):
    parcels = tiny_gpkg.parcels()
    # the village parcels are 0.001° boxes side by side from 121.300; this covers the first two and
    # touches the third's edge (a parcel counts by a point inside it)
    feature = _rectangle(121.2995, 37.3995, 121.3041, 37.4012)
    assert parcels_in_area(parcels, feature) == ["V01-001", "V01-002"]
    shift = (lambda lon, lat: (lon + 0.002, lat))  # e.g. back from GCJ-02: the same box, one parcel on
    assert parcels_in_area(parcels, feature, to_store=shift) == ["V01-002", "V01-003"]
    clicked = {"type": "Feature", "properties": {"layer": "villages_parcels", "code": "V01-001"},
               "geometry": feature["geometry"]}
    assert not is_drawing(clicked) and parcels_in_area(parcels, clicked) == []
    assert parcels_in_area(parcels, None) == []


def test_the_draw_tool_is_served_locally(tiny_gpkg):
    m = add_area_select(build_map(tiny_gpkg.context(), tiny_gpkg.parcels(), tiny_gpkg.catalog))
    html = m.get_root().render()
    assert f"{DRAW_URL}/leaflet.draw.js" in html and f"{DRAW_URL}/leaflet.draw.css" in html
    assert "框选地块" in html  # the tool's texts are the catalogue's
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    links, stack = [], [m]
    while stack:  # what streamlit-folium hands the component
        el = stack.pop()
        assert not isinstance(el, branca.colormap.ColorMap)
        if isinstance(el, folium.elements.JSCSSMixin):
            links += [u for _, u in el.default_js] + [u for _, u in el.default_css]
        stack.extend(getattr(el, "_children", {}).values())
    assert all(u.startswith("/app/static/") for u in links), links
    assert any("cdnjs" in u for _, u in folium.plugins.Draw.default_js)  # folium's own defaults untouched
    for name in ("leaflet.draw.js", "leaflet.draw.css", "LICENSE", "images/spritesheet.png",
                 "images/spritesheet-2x.png", "images/spritesheet.svg"):
        assert (VENDOR / name).stat().st_size > 0, name
    assert "Leaflet.draw 1.0.4" in (VENDOR / "leaflet.draw.js").read_text(encoding="utf-8")[:200]
    # every image the stylesheet asks for is here
    for ref in re.findall(r"url\('?([^')]+)'?\)", (VENDOR / "leaflet.draw.css").read_text(encoding="utf-8")):
        assert (VENDOR / ref).exists(), ref
