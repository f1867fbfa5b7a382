"""JSON sync and read API: batch sync, blobs, submissions and media (thin routers)."""

from fastapi import APIRouter

router = APIRouter(tags=["sync"])
