"""Settings of the webhooks capability, read from ``ASMFIELD_WEBHOOK_*`` environment variables
(documented in README's "Webhooks" section)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASMFIELD_WEBHOOK_", env_ignore_empty=True, extra="ignore")

    allow_private: bool = Field(
        True, description="Allow endpoints on private, loopback and link-local addresses (receivers on the LAN "
        "are normal in the field). Set false on a server reachable by untrusted admins (SSRF).")
    worker: bool = Field(True, description="Run the delivery worker in each server process (off: run "
                         "`asmfield webhooks deliver` yourself).")
    timeout: float = Field(10.0, description="Seconds to wait for a receiver's answer.")
    max_attempts: int = Field(10, ge=1, description="Attempts of one delivery before it is marked failed.")
    pause_after: int = Field(20, ge=1, description="Consecutive failed attempts after which an endpoint is paused.")
    poll_seconds: float = Field(5.0, gt=0, description="How often the worker looks for due deliveries when idle.")
