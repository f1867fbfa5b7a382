"""The refusals of the cases capability, each with its stable code (``app.main`` renders them).

Raise sites pass only the message (and ``details`` where the client needs them): the class fixes
the status and the code, so a code is written once, here.
"""

from __future__ import annotations

from app.errors import Conflict, Forbidden, Invalid, NotFound

# -- who may see what ------------------------------------------------------------------------


class CaseNotFound(NotFound):
    """No such case, or none the caller may see (existence is not revealed)."""

    code = "case.not_found"


class CaseForbidden(Forbidden):
    """The caller's role sees no case records (or not this list: review queue, duplicates, KPI)."""

    code = "case.forbidden"


class IdentityForbidden(Forbidden):
    """Names, phones, notes and photos are not readable by this caller now (or were erased)."""

    code = "case.identity_forbidden"


class NoConsentToPhoto(Forbidden):
    code = "case.no_consent_to_photo"


class PhotoNotFound(NotFound):
    code = "case.photo_not_found"


class BadStatus(Invalid):
    code = "case.bad_status"


# -- transitions -----------------------------------------------------------------------------


class InvalidTransition(Conflict):
    """The action is not allowed in the case's state (``details`` name the allowed actions)."""

    code = "case.invalid_transition"


class FourEyes(Conflict):
    """The approver must be another person than the one who asked."""

    code = "case.four_eyes"


class WrongRole(Forbidden):
    code = "case.wrong_role"


class UnknownAction(Invalid):
    code = "case.unknown_action"


class MissingReason(Invalid):
    """The action needs a reason (or one of its listed reasons)."""

    code = "case.reason"


class InvalidState(Conflict):
    """Services, follow-ups or consent are not recorded in the case's state."""

    code = "case.invalid_state"


class UnknownOrganisation(Invalid):
    code = "case.unknown_organisation"


class NotAnNgo(Invalid):
    code = "case.not_an_ngo"


class SameOrganisation(Invalid):
    code = "case.same_organisation"


class BadRiskLevel(Invalid):
    code = "case.bad_risk_level"


class NoConsentToShare(Invalid):
    code = "case.no_consent_to_share"


class UseMerge(Invalid):
    code = "case.use_merge"


class NoImplementedService(Invalid):
    code = "case.no_implemented_service"


class NotLost(Invalid):
    """``lost_to_follow_up`` needs enough failed follow-ups."""

    code = "case.not_lost"


# -- services, follow-ups, consent -----------------------------------------------------------


class BadServiceType(Invalid):
    code = "case.bad_service_type"


class DateInFuture(Invalid):
    code = "case.date_in_future"


class BadConsentPurpose(Invalid):
    code = "case.bad_consent_purpose"


# -- duplicates and merge --------------------------------------------------------------------


class UnknownMergeTarget(Invalid):
    code = "case.unknown_merge_target"


class MergeSelf(Invalid):
    code = "case.merge_self"


# -- review queue ----------------------------------------------------------------------------


class BadDecision(Invalid):
    code = "case.bad_decision"


class ReviewNotFound(NotFound):
    code = "case.review_not_found"


class EditSuperseded(Conflict):
    """Approving an intake edit that a newer edit replaced (decide the newest)."""

    code = "case.edit_superseded"


# -- KPI -------------------------------------------------------------------------------------


class BadPeriod(Invalid):
    """The KPI is published for whole calendar months, ``from`` not after ``to``."""

    code = "kpi.bad_period"
