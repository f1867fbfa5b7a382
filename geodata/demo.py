"""Demo data of the geodata capability for `asmfield init --demo`."""

from sqlmodel import Session

from app.settings import Settings


def seed(session: Session, settings: Settings) -> dict:
    """Load demo data; idempotent. Returns a short summary for the console."""
    return {}
