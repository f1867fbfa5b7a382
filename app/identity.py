"""Who acts: ``Actor`` (the caller: a user, possibly through one of their devices) and ``Role``.

A plain value with no web framework in it, so services, the CLI, demo data and tests build and
pass actors without importing the HTTP layer. ``app.auth`` establishes an Actor for a request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from app.models import Device, User


class Role(StrEnum):
    admin = "admin"
    coordinator = "coordinator"
    monitor = "monitor"
    caseworker = "caseworker"


@dataclass
class Actor:
    """The authenticated caller: a user, possibly through one of their devices."""

    user: User
    device: Device | None = None
    via: str = "session"  # session | token | basic | digest | device | demo
    client_addr: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def organisation_id(self) -> int:
        return self.user.organisation_id

    @property
    def label(self) -> str:
        return f"{self.user.username}@{self.device.name}" if self.device else self.user.username

    def has_role(self, *roles: str) -> bool:
        return self.user.role in roles
