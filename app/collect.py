"""ODK Collect configuration: the zlib+base64 JSON settings Collect reads from a QR code."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path


def device_server_url(base_url: str, token: str) -> str:
    """The server URL a tablet is configured with; Collect appends /formList and /submission."""
    return f"{base_url.rstrip('/')}/key/{token}"


def collect_settings(server_url: str, project_name: str, username: str | None = None) -> dict:
    general = {
        "server_url": server_url,
        "form_update_mode": "match_exactly",
        "autosend": "wifi_and_cellular",
        "delete_send": False,
    }
    if username:
        general["username"] = username
    return {"general": general, "admin": {}, "project": {"name": project_name, "icon": "A", "color": "#b5651d"}}


def encode_settings(settings: dict) -> str:
    """Collect's QR payload: base64(zlib.deflate(json))."""
    return base64.b64encode(zlib.compress(json.dumps(settings, separators=(",", ":")).encode())).decode()


def decode_settings(payload: str) -> dict:
    return json.loads(zlib.decompress(base64.b64decode(payload)))


def write_qr_png(payload: str, path: Path) -> Path:
    """Write the QR code of ``payload`` as a PNG file."""
    import qrcode

    path.parent.mkdir(parents=True, exist_ok=True)
    image = qrcode.make(payload, error_correction=qrcode.constants.ERROR_CORRECT_L)
    image.save(str(path))
    return path
