"""Point → site matching in metres (pure, no database)."""

import numpy as np
import pytest
import shapely

from geodata import spatial
from tests.geodata.conftest import offset, square

KOLWEZI = (25.47, -10.72)


def index(*geoms):
    return spatial.SiteIndex(np.array(geoms, dtype=object), np.arange(len(geoms)))


def test_point_inside_a_site_maps_to_it_with_distance_zero():
    idx = index(square(*KOLWEZI, 100))
    r = idx.match([KOLWEZI[0]], [KOLWEZI[1]], 250)
    assert r.index.tolist() == [0] and r.inside.tolist() == [True] and r.distance_m.tolist() == [0.0]


@pytest.mark.parametrize("metres", [50, 200, 249])
def test_point_near_a_site_maps_with_the_distance_in_metres(metres):
    site = square(*KOLWEZI, 100)
    east_edge = site.bounds[2]
    lon, lat = offset(east_edge, KOLWEZI[1], metres)
    r = spatial.SiteIndex(np.array([site], dtype=object), np.array([7])).match([lon], [lat], 250)
    assert r.index.tolist() == [0] and not r.inside[0]
    assert r.distance_m[0] == pytest.approx(metres, rel=0.005)


def test_point_beyond_the_tolerance_stays_unmapped():
    site = square(*KOLWEZI, 100)
    lon, lat = offset(site.bounds[2], KOLWEZI[1], 260)
    r = index(site).match([lon], [lat], 250)
    assert r.index.tolist() == [-1] and np.isnan(r.distance_m[0])


def test_nearest_of_two_sites_wins():
    a = square(*KOLWEZI, 100)
    b_centre = offset(*KOLWEZI, 500)
    b = square(*b_centre, 100)
    lon, lat = offset(*KOLWEZI, 320)  # 220 m from a's edge, 80 m from b's edge
    r = index(a, b).match([lon], [lat], 250)
    assert r.index.tolist() == [1]
    assert r.distance_m[0] == pytest.approx(80, rel=0.01)


def test_point_on_a_shared_border_goes_to_the_smaller_site_deterministically():
    big = shapely.box(25.0, -10.8, 25.01, -10.79)
    small = shapely.box(25.01, -10.8, 25.015, -10.79)  # shares the meridian 25.01
    for order in ((big, small), (small, big)):
        r = index(*order).match([25.01], [-10.795], 250)
        assert order[r.index[0]] is small and r.inside[0]


@pytest.mark.parametrize("lon,lat", [(12.5, -5.9), (18.0, 0.5), (25.47, -10.72), (29.2, -1.7), (30.9, 3.2),
                                     (27.0, -13.3)])
def test_distances_are_metres_in_every_drc_utm_zone_north_and_south(lon, lat):
    site = square(lon, lat, 150)
    px, py = offset(site.bounds[2], lat, 120)
    r = index(site).match([px], [py], 250)
    assert r.index[0] == 0
    assert r.distance_m[0] == pytest.approx(120, rel=0.005)


def test_points_across_a_utm_zone_boundary_measure_correctly():
    # 24°E is the boundary of zones 34 and 35; the site straddles it
    site = square(24.0, -10.0, 300)
    west = offset(site.bounds[0], -10.0, 100, 270)
    east = offset(site.bounds[2], -10.0, 100, 90)
    r = index(site).match([west[0], east[0]], [west[1], east[1]], 250)
    assert r.distance_m == pytest.approx([100, 100], rel=0.005)


def test_missing_coordinates_are_not_mapped():
    r = index(square(*KOLWEZI, 100)).match([np.nan, KOLWEZI[0]], [np.nan, KOLWEZI[1]], 250)
    assert r.index.tolist() == [-1, 0]


def test_buffered_points_have_the_radius_in_metres():
    (circle,) = spatial.buffer_points_m(np.array([27.48]), np.array([-11.66]), np.array([500.0]))
    area = spatial.area_m2(np.array([circle], dtype=object))[0]
    assert area == pytest.approx(np.pi * 500**2, rel=0.01)
    assert spatial.point_distance_m(*offset(27.48, -11.66, 800), circle) == pytest.approx(300, rel=0.01)


def test_utm_zone_of_points():
    assert spatial.utm_epsg(25.47, -10.72) == 32735
    assert spatial.utm_epsg(29.2, 1.5) == 32635
    assert spatial.utm_epsg(12.5, -5.9) == 32733


def test_matches_agree_with_brute_force_on_random_sites_of_every_size():
    rng = np.random.default_rng(11)
    n = 200
    lon, lat = rng.uniform(25.0, 26.0, n), rng.uniform(-11.0, -10.0, n)
    half = np.where(rng.random(n) < 0.1, rng.uniform(0.02, 0.2, n), rng.uniform(0.0005, 0.004, n))
    geoms = shapely.box(lon - half, lat - half, lon + half, lat + half)
    geoms[:20] = spatial.buffer_points_m(lon[:20], lat[:20], rng.uniform(50, 800, 20))
    pl, pa = rng.uniform(24.95, 26.05, 2000), rng.uniform(-11.05, -9.95, 2000)
    result = spatial.SiteIndex(geoms, np.arange(n)).match(pl, pa, 250)

    projected = spatial.project(geoms, 32735)
    pts = spatial.project(shapely.points(pl, pa), 32735)
    d = shapely.distance(pts[:, None], projected[None, :])
    for i in range(len(pl)):
        inside = np.nonzero(d[i] == 0)[0]
        if len(inside):
            smallest = inside[np.argmin(shapely.area(geoms[inside]))]
            assert result.inside[i] and result.index[i] == smallest
        elif d[i].min() <= 249:  # clear of the tolerance edge (one zone vs per-point zone)
            assert result.index[i] == np.argmin(d[i])
            assert result.distance_m[i] == pytest.approx(d[i].min(), rel=0.002)
        elif d[i].min() > 251:
            assert result.index[i] == -1
