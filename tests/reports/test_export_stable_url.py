"""The stable CSV URL of a form, called over real HTTP (uvicorn) the way analysts call it: pandas with
a Bearer token in ``storage_options``, urllib answering a Basic challenge as Excel and Power BI
“From Web” do, GDAL as QGIS does; and streamed: the first bytes arrive before a single row has been read."""

from __future__ import annotations

import io
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator

import httpx
import pandas as pd
import pyogrio
import pytest
import uvicorn

from reports.exports import queries
from tests.e2e.server import free_port

BOM = b"\xef\xbb\xbf"


@pytest.fixture
def served(app) -> Iterator[str]:
    """The test's app served by uvicorn in a thread (so a test can watch the export's reads)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()


def test_pandas_reads_the_stable_url_with_a_bearer_token(served, kit, visits):
    url = f"{served}/api/v1/forms/export_visit/export.csv?site=KZ-1"
    frame = pd.read_csv(url, storage_options={"Authorization": f"Bearer {kit.world.coordinator.token}"},
                        encoding="utf-8-sig")
    assert set(frame["_uuid"]) == {visits["edited"], visits["second"], visits["third"]}
    assert frame.set_index("_uuid").loc[visits["third"], "remark"] == "Été sec, accès difficile"
    assert frame["counts-workers"].dtype.kind == "i"


def test_a_client_answering_the_basic_challenge_gets_the_csv_as_excel_does(served, kit, visits):
    url = f"{served}/api/v1/forms/export_visit/export.csv"
    refused = httpx.get(url)
    assert refused.status_code == 401
    assert 'Basic realm="asmfield"' in refused.headers.get_list("www-authenticate")[-1]
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, served, kit.world.monitor.username, kit.world.monitor.password)
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(passwords))
    with opener.open(url) as response:  # first without credentials, then again after the challenge
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        frame = pd.read_csv(io.BytesIO(response.read()), encoding="utf-8-sig")
    assert set(frame["_uuid"]) == {visits["edited"], visits["second"]}  # a monitor: their own visits


def test_the_first_bytes_arrive_before_any_row_is_read(served, kit, visits, monkeypatch):
    """The export's reads wait until the client holds the first bytes: a server that buffered the
    response would never send them, and the reads would give up."""
    first_bytes_held = threading.Event()
    read_chunk = queries.chunk

    def chunk_after_first_bytes(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if not first_bytes_held.wait(timeout=60):
            raise RuntimeError("the client never got the first bytes of the export")
        return read_chunk(*args, **kwargs)

    monkeypatch.setattr(queries, "chunk", chunk_after_first_bytes)
    headers = {**kit.world.coordinator.bearer, "Accept-Encoding": "identity"}
    with httpx.stream("GET", f"{served}/api/v1/forms/export_visit/export.csv", headers=headers) as response:
        pieces = response.iter_bytes()
        first = next(pieces)
        assert first.startswith(BOM + b"_submitted_at,site_code,")
        assert b"uuid:" not in first
        first_bytes_held.set()
        body = first + b"".join(pieces)
    assert body.count(b"\r\n") == 1 + 4
    first_bytes_held.clear()
    with httpx.stream("GET", f"{served}/api/v1/forms/export_visit/export.zip", headers=headers) as response:
        pieces = response.iter_bytes()
        first = next(pieces)
        assert first.startswith(b"PK\x03\x04")  # the zip's first entry header, before any row was read
        first_bytes_held.set()
        archive = zipfile.ZipFile(io.BytesIO(first + b"".join(pieces)))
    assert archive.namelist() == ["export_visit.csv", "export_visit-pits.csv", "export_visit-pits-shafts.csv"]


def test_gdal_reads_the_stable_url_as_points_as_qgis_does(served, kit, visits):
    """QGIS opens the URL through GDAL (``/vsicurl_streaming/``, Basic or a Bearer header) and
    places the rows by the geopoint's longitude and latitude columns."""
    url = f"CSV:/vsicurl_streaming/{served}/api/v1/forms/export_visit/export.csv?site=KZ-1"
    options = {"GDAL_HTTP_HEADERS": f"Authorization: Bearer {kit.world.coordinator.token}"}
    pyogrio.set_gdal_config_options(options)
    try:
        frame = pyogrio.read_dataframe(url, X_POSSIBLE_NAMES="location-longitude", Y_POSSIBLE_NAMES="location-latitude")
    finally:
        pyogrio.set_gdal_config_options(dict.fromkeys(options))
    assert set(frame["_uuid"]) == {visits["edited"], visits["second"], visits["third"]}
    assert {(p.x, p.y) for p in frame.geometry} == {(25.405, -10.705)}
