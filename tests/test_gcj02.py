"""GCJ-02 (gis/gcj02.py): the published forward transform, its iterative inverse, the out-of-China rule, the CLI."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import shapely

from gis.base.gcj02 import (
    convert,
    gcj02_to_wgs84,
    geometries_from_gcj02,
    geometries_to_gcj02,
    out_of_china,
    wgs84_to_gcj02,
)

# (wgs lon, wgs lat, gcj lon, gcj lat): the reference points of eviltransform's test suite
# (Shanghai, Shenzhen, Beijing), computed with a = 6378245.0, ee = 0.00669342162296594323
REFERENCE = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),
]
OUTSIDE = [(2.3522, 48.8566), (-74.006, 40.7128), (139.6917, 35.6895), (151.2093, -33.8688), (70.0, 30.0)]


def metres(lon1, lat1, lon2, lat2) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(a))


@pytest.mark.parametrize("wlon, wlat, glon, glat", REFERENCE)
def test_forward_matches_the_published_algorithm(wlon, wlat, glon, glat):
    lon, lat = wgs84_to_gcj02(wlon, wlat)
    assert abs(lon - glon) < 1e-9 and abs(lat - glat) < 1e-9
    assert 300 < metres(wlon, wlat, glon, glat) < 700  # hundreds of metres: why AMap needs it


@pytest.mark.parametrize("wlon, wlat, glon, glat", REFERENCE)
def test_inverse_is_sub_metre(wlon, wlat, glon, glat):
    lon, lat = gcj02_to_wgs84(glon, glat)
    assert metres(lon, lat, wlon, wlat) < 0.01  # the brief asks < 0.5 m; the iteration gets to millimetres


def test_inverse_over_china_is_below_half_a_metre():
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(74, 135, 5000), rng.uniform(18, 53, 5000)
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    err = [metres(a, b, c, d) for a, b, c, d in zip(back[0], back[1], lon, lat)]
    assert max(err) < 0.001


@pytest.mark.parametrize("lon, lat", OUTSIDE)
def test_outside_china_nothing_moves(lon, lat):
    assert out_of_china(lon, lat)
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_the_china_rectangle_edges():
    assert not out_of_china(72.004, 0.8293) and not out_of_china(137.8347, 55.8271)
    assert out_of_china(72.0039, 30) and out_of_china(120, 55.8272)


def test_arrays_keep_their_shape_and_scalars_are_floats():
    lon = np.array([[121.3, 2.35], [116.4, 121.4]])
    lat = np.array([[37.4, 48.85], [39.9, 37.45]])
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert glon.shape == (2, 2) and glon[0, 1] == 2.35 and glon[0, 0] != 121.3
    assert isinstance(wgs84_to_gcj02(121.3, 37.4)[0], float)


def test_convert_between_named_datums():
    w, g = REFERENCE[0][:2], REFERENCE[0][2:]
    assert convert(*w, "cgcs2000", "gcj02") == pytest.approx(g, abs=1e-9)
    assert convert(*g, "gcj02", "wgs84") == pytest.approx(w, abs=1e-8)
    assert convert(*w, "wgs84", "cgcs2000") == w  # centimetres apart: one datum on a web map
    from gis.base.errors import InputError

    with pytest.raises(InputError, match="bd09"):
        convert(1, 2, "bd09", "wgs84")


def test_geometries_round_trip():
    poly = shapely.box(121.30, 37.40, 121.31, 37.41)
    shifted = geometries_to_gcj02(np.array([poly]))[0]
    assert shifted.centroid.distance(poly.centroid) > 0.003  # ≈ 400 m
    back = geometries_from_gcj02(np.array([shifted]))[0]
    assert shapely.hausdorff_distance(back, poly) < 1e-8


def test_cli_prints_json(capsys):
    from gis.cli.main import main

    wlon, wlat, glon, glat = REFERENCE[1]
    assert main(["convert-coords", "--from", "wgs84", "--to", "gcj02", str(wlon), str(wlat)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"lon", "lat"} and out["lon"] == pytest.approx(glon, abs=1e-8)
    assert main(["convert-coords", "--from", "gcj02", "--to", "cgcs2000", str(glon), str(glat)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert metres(out["lon"], out["lat"], wlon, wlat) < 0.01
    assert main(["convert-coords", "--from", "wgs84", "--to", "gcj02", "-0.12", "51.5"]) == 0
    assert json.loads(capsys.readouterr().out) == {"lon": -0.12, "lat": 51.5}


def test_cli_bad_datum_exits_2_bilingually(capsys):
    from gis.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["convert-coords", "--from", "bd09", "--to", "gcj02", "1", "2"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "错误 Error" in err and "bd09" in err
