"""ODK Collect configuration payloads and their QR codes."""

from __future__ import annotations

import zxingcpp
from PIL import Image

from app.collect import collect_settings, decode_settings, device_server_url, encode_settings, write_qr_png


def test_server_url_puts_the_token_after_key():
    assert device_server_url("http://192.168.1.10:8000/", "tok") == "http://192.168.1.10:8000/key/tok"


def test_settings_round_trip_through_the_collect_encoding():
    settings = collect_settings("http://server/key/tok", "asmfield tablet-1", username="monitor1")
    assert settings["general"] == {"server_url": "http://server/key/tok", "form_update_mode": "match_exactly",
                                   "autosend": "wifi_and_cellular", "delete_send": False, "username": "monitor1"}
    assert settings["project"]["name"] == "asmfield tablet-1" and settings["admin"] == {}
    assert decode_settings(encode_settings(settings)) == settings


def test_qr_png_decodes_to_the_payload(tmp_path):
    payload = encode_settings(collect_settings("http://server/key/" + "t" * 43, "asmfield tablet-1"))
    path = write_qr_png(payload, tmp_path / "qr" / "tablet.png")
    found = zxingcpp.read_barcodes(Image.open(path), formats=zxingcpp.BarcodeFormat.QRCode)
    assert [r.text for r in found] == [payload]
