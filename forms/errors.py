"""The forms capability's refusals: one class per stable error code (``form.*``).

Raised by forms and by sync (which serves forms to tablets); rendered only by ``app.main``'s JSON and
OpenRosa error writers.
"""

from __future__ import annotations

from app.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge, UnsupportedMedia


class FormBadId(Invalid):
    code = "form.bad_id"


class FormBadKind(Invalid):
    code = "form.bad_kind"


class FormBadMediaName(Invalid):
    code = "form.bad_media_name"


class FormSettingsNotObject(BadRequest):
    """The settings body is not a JSON object (400); a bad setting in it is ``FormBadSetting`` (422)."""

    code = "form.bad_setting"


class FormBadSetting(Invalid):
    code = "form.bad_setting"


class FormBadState(Invalid):
    code = "form.bad_state"


class FormBadVersion(Invalid):
    code = "form.bad_version"


class FormClosed(Forbidden):
    code = "form.closed"


class FormFileMissing(Invalid):
    code = "form.file_missing"


class FormForbidden(Forbidden):
    code = "form.forbidden"


class FormKindFixed(Conflict):
    code = "form.kind_fixed"


class FormMediaGenerated(Invalid):
    code = "form.media_generated"


class FormMediaMissing(NotFound):
    code = "form.media_missing"


class FormMediaNotFound(NotFound):
    code = "form.media_not_found"


class FormMediaNotReferenced(Invalid):
    code = "form.media_not_referenced"


class FormNotFound(NotFound):
    code = "form.not_found"


class FormNotMultipart(BadRequest):
    code = "form.not_multipart"


class FormTooLarge(PayloadTooLarge):
    code = "form.too_large"


class FormUnsupportedFile(UnsupportedMedia):
    code = "form.unsupported_file"


class FormUploadRace(Conflict):
    code = "form.upload_race"


class FormVersionConflict(Conflict):
    code = "form.version_conflict"


class FormVersionNotFound(NotFound):
    code = "form.version_not_found"


class FormXformInvalid(Invalid):
    code = "form.xform_invalid"


class FormXlsformInvalid(Invalid):
    code = "form.xlsform_invalid"
