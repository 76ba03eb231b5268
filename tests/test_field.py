"""The field page's core (issue 17 item 4): the parcels around a place, nearest first, in metres."""
from __future__ import annotations

import math

import geopandas as gpd
import pyproj
import pytest
import shapely

from gis.base.errors import InputError
from gis.model.spatial import compass_point, nearest_parcels

LON, LAT = 121.30, 37.40
GEOD = pyproj.Geod(ellps="GRS80")  # the CGCS2000 ellipsoid


def _parcels():
    """Four 100 m-ish squares: one around the place, one 0.002° east, one 0.003° north, one far south-west."""
    boxes = {"HERE": shapely.box(LON - 0.0005, LAT - 0.0005, LON + 0.0005, LAT + 0.0005),
             "EAST": shapely.box(LON + 0.002, LAT - 0.0005, LON + 0.003, LAT + 0.0005),
             "NORTH": shapely.box(LON - 0.0005, LAT + 0.003, LON + 0.0005, LAT + 0.004),
             "FAR": shapely.box(LON - 0.2, LAT - 0.2, LON - 0.199, LAT - 0.199)}
    return gpd.GeoDataFrame({"code": list(boxes), "name": [f"{c}地块" for c in boxes]},
                            geometry=list(boxes.values()), crs="EPSG:4490")


def test_nearest_first_with_metric_distances_to_the_edge():
    got = nearest_parcels(_parcels(), LON, LAT, n=3)
    assert list(got["code"]) == ["HERE", "EAST", "NORTH"]  # FAR cut by n
    assert "geometry" not in got.columns and list(got["inside"]) == [True, False, False]
    assert got["distance_m"][0] == 0.0 and math.isnan(got["bearing"][0])
    # to the edge, on the ellipsoid: 0.002° of longitude at 37.4° N and 0.003° of latitude
    east = GEOD.inv(LON, LAT, LON + 0.002, LAT)[2]
    north = GEOD.inv(LON, LAT, LON, LAT + 0.003)[2]
    assert got["distance_m"][1] == pytest.approx(east, abs=0.5) and 170 < east < 180
    assert got["distance_m"][2] == pytest.approx(north, abs=0.5) and 330 < north < 335
    # degrees would have put NORTH (0.003) after EAST (0.002) too, but at the wrong ratio: metres differ by ~1.9x
    assert got["distance_m"][2] / got["distance_m"][1] == pytest.approx(north / east, rel=1e-3)
    assert compass_point(got["bearing"][1]) == "e" and compass_point(got["bearing"][2]) == "n"


def test_metres_decide_where_degrees_would_not():
    # 0.0024° east (≈ 212 m at 37.4° N) against 0.0020° north (≈ 222 m): fewer degrees, more metres
    g = gpd.GeoDataFrame({"code": ["N", "E"]}, crs="EPSG:4490",
                         geometry=[shapely.Point(LON, LAT + 0.0020).buffer(1e-6), shapely.Point(LON + 0.0024, LAT).buffer(1e-6)])
    got = nearest_parcels(g, LON, LAT, n=2)
    assert list(got["code"]) == ["E", "N"]
    assert got["distance_m"][0] == pytest.approx(GEOD.inv(LON, LAT, LON + 0.0024, LAT)[2], abs=0.5)


def test_max_distance_and_empty_and_bad_places():
    got = nearest_parcels(_parcels(), LON, LAT, n=10, max_m=250)
    assert list(got["code"]) == ["HERE", "EAST"]
    assert len(nearest_parcels(_parcels().iloc[0:0], LON, LAT, n=5)) == 0
    assert "distance_m" in nearest_parcels(_parcels().iloc[0:0], LON, LAT).columns
    for lon, lat in ((float("nan"), LAT), (LON, 91.0), (181.0, LAT)):
        with pytest.raises(InputError):
            nearest_parcels(_parcels(), lon, lat)


def test_compass_points():
    assert [compass_point(b) for b in (0, 22, 23, 90, 180, 225, 300, 359.9)] == ["n", "n", "ne", "e", "s", "sw", "nw", "n"]
    assert compass_point(None) is None and compass_point(float("nan")) is None


def test_photos_on_the_map_are_escaped_points_with_their_direction(catalog):
    import json

    from gis.maps.mapview import build_map
    from gis.maps.photos import photo_collection

    pts = [{"id": 7, "code": "HERE", "lon": LON, "lat": LAT, "direction": 405.0, "caption": "</script><b>{{ 7*7 }}</b>",
            "taken_at": "2026-11-30T10:00:00+08:00"},
           {"id": 8, "code": "HERE", "lon": None, "lat": None, "direction": None, "caption": "", "taken_at": None}]
    fc = json.loads(photo_collection(pts))
    (f,) = fc["features"]  # the one without a location is left out
    assert f["geometry"]["coordinates"] == [LON, LAT] and f["properties"]["direction"] == 45.0
    html = build_map({}, _parcels(), catalog, photos=pts).get_root().render()
    assert "RenewalAtlas.addPhotos" in html and '"minZoom":15' in html
    assert "</script><b>" not in html and "{{ 7*7 }}" not in html
    # the caption reaches the page as data, its braces not evaluated by a template (a 49 would say they were);
    # folium's random element ids may hold any digits, so the check is on the caption itself
    caption = html.split('"caption":"', 1)[1].split('"', 1)[0]
    assert "49" not in caption and "7*7" in caption and "<" not in caption
    assert "\"photos\": feature_group" in html  # a group of its own, tracked (switched off, it stays off)
    assert "addPhotos" not in build_map({}, _parcels(), catalog).get_root().render()
