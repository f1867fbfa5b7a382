"""The synthetic data generator follows domain.md §1.7 and is deterministic (pure)."""

import numpy as np
import shapely

from geodata import synthetic


def test_same_seed_same_data_other_seed_other_data():
    a, b = synthetic.generate(7, n_sites=30), synthetic.generate(7, n_sites=30)
    assert list(a.sites["code"]) == list(b.sites["code"])
    assert all(x.equals(y) for x, y in zip(a.legal.geometry, b.legal.geometry, strict=True))
    assert [v["answers"] for v in a.visits] == [v["answers"] for v in b.visits]
    c = synthetic.generate(8, n_sites=30)
    assert not all(x.equals(y) for x, y in zip(a.legal.geometry, c.legal.geometry, strict=True))


def test_permits_are_unions_of_30_arc_second_cells():
    data = synthetic.generate(1, n_sites=10)
    coords = shapely.get_coordinates(np.asarray(data.legal.geometry.values))
    cells = coords * 120
    assert np.allclose(cells, np.round(cells), atol=1e-6)
    assert set(data.legal["kind"]) == {"zea", "pe"}


def test_most_sites_sit_in_a_permit_some_in_a_zea_some_in_neither():
    data = synthetic.generate(3, n_sites=200, visits_per_site=(0, 0))
    zea = shapely.union_all(data.legal[data.legal["kind"] == "zea"].geometry.values)
    pe = shapely.union_all(data.legal[data.legal["kind"] == "pe"].geometry.values)
    centres = shapely.centroid(np.asarray(data.sites.geometry.values))
    in_pe = shapely.contains(pe, centres).mean()
    in_zea = (shapely.contains(zea, centres) & ~shapely.contains(pe, centres)).mean()
    neither = (~shapely.contains(pe, centres) & ~shapely.contains(zea, centres)).mean()
    assert 0.6 < in_pe < 0.85 and 0.05 < in_zea < 0.3 and 0.05 < neither < 0.3


def test_visits_are_near_their_site_and_children_are_seen_sometimes():
    data = synthetic.generate(5, n_sites=60)
    sites = dict(zip(data.sites["code"], data.sites.geometry, strict=True))
    from geodata import spatial

    far = [spatial.point_distance_m(v["lon"], v["lat"], sites[v["site_code"]]) for v in data.visits]
    assert max(far) < 200
    seen = np.mean([v["answers"]["children_u15_seen"] > 0 for v in data.visits])
    assert 0.03 < seen < 0.4
