"""Per-organisation case list served as form media of the follow-up form (offline selection)."""

from __future__ import annotations


def case_list_csv(session, actor, form, version):  # noqa: ANN001, ANN201
    """CSV of the caller organisation's open cases (pseudonymous code, age band, site; no names)."""
    return None
