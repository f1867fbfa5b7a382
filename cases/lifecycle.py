"""The case lifecycle of domain.md §3.5 as data: states, transitions, who may take each, and the
four-eyes rule. Pure: no database, no HTTP. ``cases.transitions`` applies it.

Roles map onto ours: FM = monitor, CW = caseworker of the owning NGO, CO = coordinator. The NGO
supervisor who may approve case plans is another caseworker of the owning NGO (four-eyes: never
the one who asked). ``system`` transitions are taken by the server, never through the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SUBMITTED = "submitted"
VERIFIED = "verified"
REJECTED = "rejected_not_eligible"
MERGED = "merged_duplicate"
REFERRED = "referred"
ACCEPTED = "accepted"
ASSESSMENT = "assessment"
PLAN_PENDING = "case_plan_pending_approval"
IN_SERVICES = "in_services"
TRANSFERRED = "transferred"
MONITORING = "monitoring"
WITHDRAWN_PENDING = "withdrawn_pending_closure"
CLOSED = "closed"
REOPENED = "reopened"

STATES = (SUBMITTED, VERIFIED, REJECTED, MERGED, REFERRED, ACCEPTED, ASSESSMENT, PLAN_PENDING, IN_SERVICES,
          TRANSFERRED, MONITORING, WITHDRAWN_PENDING, CLOSED, REOPENED)
#: Cases a caseworker still works on (listed in the offline case list of the follow-up form).
OPEN_STATES = (ACCEPTED, ASSESSMENT, PLAN_PENDING, IN_SERVICES, MONITORING, WITHDRAWN_PENDING, REOPENED)
#: Before the NGO accepts: the coordinator verifies and routes, the creating monitor may still look.
PRE_ACCEPTANCE_STATES = (SUBMITTED, VERIFIED, REFERRED)
TERMINAL_STATES = (REJECTED, MERGED)

CLOSURE_REASONS = ("withdrawn_and_supported", "turned_18", "lost_to_follow_up", "consent_withdrawn", "death",
                   "transferred_out", "duplicate")
#: Closures a caseworker or coordinator may request outside the withdrawal path (approved by a coordinator).
REQUESTABLE_CLOSURE_REASONS = ("turned_18", "lost_to_follow_up", "consent_withdrawn", "death", "transferred_out")
REJECTION_REASONS = ("age_18_or_over", "no_child_labour", "no_consent", "other")
RELAPSE_REASONS = ("relapse", "new_need")

CW, CO, SYSTEM = "caseworker", "coordinator", "system"


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[str, ...]
    target: str | None  # None: stays in place (a recorded request)
    roles: tuple[str, ...]
    #: The approver must differ from whoever made the pending request.
    four_eyes: bool = False
    needs_reason: bool = False
    reasons: tuple[str, ...] = ()
    #: A pending request of this kind must exist.
    needs_request: str | None = None
    #: Makes a request (plan, closure): not while another request is pending.
    creates_request: bool = False
    note: str = ""
    extra: dict = field(default_factory=dict)


TRANSITIONS: tuple[Transition, ...] = (
    Transition("verify", (SUBMITTED,), VERIFIED, (CO,), note="eligible child-labour case; risk level confirmed"),
    Transition("reject", (SUBMITTED,), REJECTED, (CO,), needs_reason=True, reasons=REJECTION_REASONS),
    Transition("merge", (SUBMITTED,), MERGED, (CO,), note="into an existing case (use the merge route)"),
    Transition("refer", (VERIFIED,), REFERRED, (CO,), note="needs consent_share_partner = yes"),
    Transition("close_consent_withdrawn", (VERIFIED,), CLOSED, (CO,)),
    Transition("accept", (REFERRED, TRANSFERRED), ACCEPTED, (CW,)),
    Transition("decline", (REFERRED, TRANSFERRED), VERIFIED, (CW,), needs_reason=True),
    Transition("submit_plan", (ACCEPTED, ASSESSMENT), PLAN_PENDING, (CW,), creates_request=True),
    Transition("approve_plan", (PLAN_PENDING,), IN_SERVICES, (CO, CW), four_eyes=True, needs_request="plan"),
    Transition("reject_plan", (PLAN_PENDING,), ASSESSMENT, (CO, CW), four_eyes=True, needs_reason=True,
               needs_request="plan"),
    Transition("start_monitoring", (IN_SERVICES,), MONITORING, (CW,), note="needs an implemented service"),
    Transition("transfer", (IN_SERVICES,), TRANSFERRED, (CO,), note="to another partner; needs consent to share"),
    Transition("resume_services", (MONITORING,), IN_SERVICES, (CW,), needs_reason=True, reasons=RELAPSE_REASONS),
    Transition("criteria_met", (MONITORING,), WITHDRAWN_PENDING, (SYSTEM,)),
    Transition("request_closure", (ACCEPTED, ASSESSMENT, IN_SERVICES, MONITORING), None, (CW, CO),
               needs_reason=True, reasons=REQUESTABLE_CLOSURE_REASONS, creates_request=True),
    Transition("approve_closure", (WITHDRAWN_PENDING, ACCEPTED, ASSESSMENT, IN_SERVICES, MONITORING), CLOSED, (CO,),
               four_eyes=True, needs_request="closure"),
    Transition("reject_closure", (WITHDRAWN_PENDING,), MONITORING, (CO,), needs_reason=True),
    Transition("reopen", (CLOSED,), REOPENED, (CO,), needs_reason=True),
    Transition("resume_assessment", (REOPENED,), ASSESSMENT, (CW,)),
)
BY_ACTION = {t.action: t for t in TRANSITIONS}


def allowed_actions(status: str, *, pending_request: str | None = None, role: str | None = None) -> list[str]:
    """Actions that can follow ``status`` (for ``role`` if given), in table order; system ones excluded."""
    out = []
    for t in TRANSITIONS:
        if status not in t.sources or SYSTEM in t.roles:
            continue
        if t.needs_request and t.needs_request != pending_request:
            continue
        if t.creates_request and pending_request is not None:
            continue
        if role is not None and role not in t.roles:
            continue
        out.append(t.action)
    return out


class TransitionRefused(Exception):
    """Why a transition cannot be taken: ``kind`` is state | role | four_eyes | reason."""

    def __init__(self, kind: str, message: str, allowed: list[str] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.allowed = allowed or []


def check(action: str, *, status: str, role: str, actor_user_id: int | None, pending_request: str | None,
          requested_by_user_id: int | None, reason: str | None) -> Transition:
    """Return the transition for ``action`` from ``status`` taken by ``role``, or raise ``TransitionRefused``.

    :param role: caseworker | coordinator | system (the service decides whether a caseworker owns the case).
    """
    t = BY_ACTION.get(action)
    allowed = allowed_actions(status, pending_request=pending_request)
    if t is None:
        raise TransitionRefused("unknown", f"unknown action {action!r}; known: {', '.join(BY_ACTION)}", allowed)
    if status not in t.sources or (t.needs_request and t.needs_request != pending_request) or (
            t.creates_request and pending_request is not None):
        raise TransitionRefused(
            "state", f"{action!r} is not allowed from {status!r}; allowed: {', '.join(allowed) or 'none'}", allowed)
    if role not in t.roles:
        raise TransitionRefused("role", f"{action!r} is taken by: {', '.join(t.roles)}; not by a {role}", allowed)
    if t.four_eyes and actor_user_id is not None and actor_user_id == requested_by_user_id:
        raise TransitionRefused("four_eyes", f"{action!r} needs a second person: the approver must not be the "
                                "one who made the request", allowed)
    if t.needs_reason and not (reason and reason.strip()):
        raise TransitionRefused("reason", f"{action!r} needs a reason"
                                + (f" (one of: {', '.join(t.reasons)})" if t.reasons else ""), allowed)
    if t.reasons and reason not in t.reasons:
        raise TransitionRefused("reason", f"reason for {action!r} must be one of: {', '.join(t.reasons)}", allowed)
    return t


# -- classification ---------------------------------------------------------------------------

CLASSIFIER_VERSION = "2026.1"
HAZARDOUS_TASKS = {"digging_underground", "digging_surface", "carrying_ore", "washing_ore", "sorting_crushing",
                   "transporting_ore"}
UNCONDITIONAL_SIGNS = {"cannot_leave", "debt", "trafficked", "sexual_exploitation", "armed_group"}


def classify(*, age: int | None, activities: list[str], forced_signs: list[str], hours_per_day: int | None,
             night_work: bool, works_for: str | None) -> str:
    """WFCL classification of §3.1 (versioned by ``CLASSIFIER_VERSION``)."""
    if age is None or age >= 18:
        return "not_child_labour"
    if set(forced_signs) & UNCONDITIONAL_SIGNS or works_for == "armed_group":
        return "wfcl_unconditional"
    if set(activities) & HAZARDOUS_TASKS or night_work or (hours_per_day or 0) > 8:
        return "wfcl_hazardous"
    if activities:
        return "child_labour_non_wfcl"
    return "not_child_labour"


def age_band(age: int | None) -> str | None:
    if age is None:
        return None
    if age < 12:
        return "5-11"
    if age < 15:
        return "12-14"
    return "15-17" if age < 18 else "18+"


def default_risk(*, classification: str, activities: list[str], caregiver_relation: str | None,
                 injuries: list[str], declared: str | None) -> str:
    """Risk of §3.4 item 32: high for unconditional WFCL, underground, unaccompanied, injured; the monitor may raise it."""
    computed = "low"
    if classification == "wfcl_hazardous":
        computed = "medium"
    if (classification == "wfcl_unconditional" or "digging_underground" in activities
            or caregiver_relation == "none" or any(i not in ("none",) for i in injuries)):
        computed = "high"
    order = ["low", "medium", "high"]
    if declared in order and order.index(declared) > order.index(computed):
        return declared
    return computed
