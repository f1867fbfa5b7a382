"""Who may do what with submissions: submit to a form, see it, edit a record; and the refusal of
case data on the generic submission and media routes.

Submitting and seeing follow the forms capability's rule (``forms.service``); editing a record
asks the record policy a capability registered (``Hooks.may_edit_record``; cases: the owning NGO's
caseworkers for case forms) before sync's own rule; case data is refused when the form's kind
says so or a restricted-data policy (``Hooks.is_restricted_data``) claims the submission.
"""

from __future__ import annotations

from sqlmodel import Session

from app.events import Hooks
from app.identity import Actor, Role
from forms import service as forms_service
from forms.models import CASE_FORM_KINDS, Form
from sync import queries
from sync.errors import SubmissionCaseData
from sync.models import Submission

__all__ = ["may_edit", "may_submit", "original_submitter", "refuse_case_data", "refuse_case_submission",
           "visible_forms"]


def may_submit(actor: Actor, form: Form) -> bool:
    """Whether ``actor`` may submit to ``form`` by role and kind (``forms.service`` owns the rule)."""
    return forms_service.may_submit(actor, form)


def visible_forms(session: Session, actor: Actor) -> list[Form]:
    """Forms ``actor`` may list and download (``forms.service`` owns the rule)."""
    return forms_service.forms_visible_to(session, actor)


def may_edit(session: Session, actor: Actor | None, form: Form, old: Submission, *, hooks: Hooks) -> bool:
    """May ``actor`` replace the current version ``old`` of a record (``meta/deprecatedID``)?

    A record policy registered by a capability decides for its records (case forms: the cases
    rule). Otherwise: the record's original submitter (whoever sent its first version, possibly
    from a device), admins and coordinators.
    """
    if actor is None:
        return True
    verdict = hooks.may_edit_record(session, actor=actor, form=form, submission=old)
    if verdict is not None:
        return verdict
    return actor.role in (Role.admin, Role.coordinator) or original_submitter(session, old) == actor.user.id


def original_submitter(session: Session, submission: Submission) -> int | None:
    """The user who sent the first version of ``submission``'s record."""
    if submission.instance_id == submission.root_instance_id:
        return submission.submitted_by_user_id
    return queries.submitter_of(session, submission.root_instance_id)


def refuse_case_data(session: Session, *, hooks: Hooks, form: Form, submission: Submission | None = None) -> None:
    """Case-form submissions are read only through ``/api/v1/cases`` (scoped, identity reads
    audited), never through the generic submission and media routes: 403 ``submission.case_data``.

    "Case data" is the form's kind (fixed once it has submissions) or, whatever the kind says now,
    a submission that a restricted-data policy claims (cases: one that case management took in).
    """
    if form.kind in CASE_FORM_KINDS or hooks.is_restricted_data(session, form=form, submission=submission):
        raise SubmissionCaseData(f"submissions of case form {form.xml_form_id!r} are read through /api/v1/cases "
                                 "(case, identity and photo routes), not the generic submission API",
                                 details={"use": "/api/v1/cases"})


def refuse_case_submission(session: Session, *, hooks: Hooks, instance_id: str) -> None:
    """``refuse_case_data`` for the submission with this instanceID (nothing when there is none)."""
    submission = queries.submission_by_instance_id(session, instance_id)
    form = session.get(Form, submission.form_id) if submission is not None else None
    if form is not None:
        refuse_case_data(session, hooks=hooks, form=form, submission=submission)
