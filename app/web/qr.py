"""QR codes drawn as SVG for pages (ODK Collect's "Configure with QR code"): no image file is written,
and an inline SVG needs nothing from elsewhere."""

from __future__ import annotations

import qrcode
import qrcode.image.svg
from markupsafe import Markup


def qr_svg(payload: str, *, label: str) -> Markup:
    """The QR code of ``payload`` as an ``<svg>`` element with an accessible name."""
    image = qrcode.make(payload, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=4,
                        error_correction=qrcode.constants.ERROR_CORRECT_L)
    svg = image.to_string(encoding="unicode")
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{Markup.escape(label)}" class="qr" ', 1)
    return Markup(svg)
