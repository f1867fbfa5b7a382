"""The sync capability's refusals: one class per stable error code (``submission.*``, ``batch.*``,
``blob.*``, ``media.*``, ``openrosa.*``, ``request.*``), rendered only by ``app.main``'s JSON and
OpenRosa error writers.
"""

from __future__ import annotations

from app.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge, UnsupportedMedia


class BatchBadData(Invalid):
    code = "batch.bad_data"


class BatchInvalid(Invalid):
    code = "batch.invalid"


class BatchItemMismatch(Invalid):
    code = "batch.item_mismatch"


class BatchNotJson(BadRequest):
    code = "batch.not_json"


class BatchTooLarge(PayloadTooLarge):
    code = "batch.too_large"


class BatchTooManyItems(PayloadTooLarge):
    code = "batch.too_many_items"


class BlobBadHash(Invalid):
    code = "blob.bad_hash"


class BlobHashMismatch(Invalid):
    code = "blob.hash_mismatch"


class BlobNotExpected(Forbidden):
    code = "blob.not_expected"


class BlobTooLarge(PayloadTooLarge):
    code = "blob.too_large"


class MediaBadName(Invalid):
    code = "media.bad_name"


class MediaBadSize(Invalid):
    code = "media.bad_size"


class MediaCorruptImage(UnsupportedMedia):
    code = "media.corrupt_image"


class MediaEmpty(Invalid):
    code = "media.empty"


class MediaImageTooLarge(PayloadTooLarge):
    code = "media.image_too_large"


class MediaNoVariant(NotFound):
    code = "media.no_variant"


class MediaNotAnImage(UnsupportedMedia):
    code = "media.not_an_image"


class MediaNotFound(NotFound):
    code = "media.not_found"


class MediaTooLarge(PayloadTooLarge):
    code = "media.too_large"


class MediaUnsupportedImage(UnsupportedMedia):
    code = "media.unsupported_image"


class OpenrosaBadVersion(BadRequest):
    code = "openrosa.bad_version"


class RequestBadCursor(Invalid):
    code = "request.bad_cursor"


class RequestBadDate(Invalid):
    code = "request.bad_date"


class RequestBadLength(BadRequest):
    code = "request.bad_length"


class RequestBadLimit(Invalid):
    code = "request.bad_limit"


class RequestBadOffset(Invalid):
    code = "request.bad_offset"


class SubmissionAlreadySuperseded(Conflict):
    code = "submission.already_superseded"


class SubmissionBadInstanceId(BadRequest):
    code = "submission.bad_instance_id"


class SubmissionBadLength(BadRequest):
    code = "submission.bad_length"


class SubmissionCaseData(Forbidden):
    code = "submission.case_data"


class SubmissionDeprecatedNotFound(NotFound):
    code = "submission.deprecated_not_found"


class SubmissionEditForbidden(Forbidden):
    code = "submission.edit_forbidden"


class SubmissionFieldTooLong(BadRequest):
    code = "submission.field_too_long"


class SubmissionForbidden(Forbidden):
    code = "submission.forbidden"


class SubmissionFormKindChanged(Conflict):
    code = "submission.form_kind_changed"


class SubmissionInvalidValue(Invalid):
    code = "submission.invalid_value"


class SubmissionMissingXml(BadRequest):
    code = "submission.missing_xml"


class SubmissionMultipartMalformed(BadRequest):
    code = "submission.multipart_malformed"


class SubmissionMultipleXml(BadRequest):
    code = "submission.multiple_xml"


class SubmissionNoFormId(BadRequest):
    code = "submission.no_form_id"


class SubmissionNotFound(NotFound):
    code = "submission.not_found"


class SubmissionNotMultipart(UnsupportedMedia):
    code = "submission.not_multipart"


class SubmissionRetry(Conflict):
    code = "submission.retry"


class SubmissionTooLarge(PayloadTooLarge):
    code = "submission.too_large"


class SubmissionTooManyParts(BadRequest):
    code = "submission.too_many_parts"


class SubmissionTruncated(BadRequest):
    code = "submission.truncated"


class SubmissionUnknownField(Invalid):
    code = "submission.unknown_field"


class SubmissionWrongRoot(Invalid):
    code = "submission.wrong_root"


class SubmissionXmlConflict(Conflict):
    code = "submission.xml_conflict"


class SubmissionXmlDtd(BadRequest):
    code = "submission.xml_dtd"


class SubmissionXmlEncoding(BadRequest):
    code = "submission.xml_encoding"


class SubmissionXmlMalformed(BadRequest):
    code = "submission.xml_malformed"


class SubmissionXmlTooLarge(PayloadTooLarge):
    code = "submission.xml_too_large"


class ReviewBadState(Invalid):
    code = "review.bad_state"


class ReviewEmpty(Invalid):
    code = "review.empty"


class ReviewForbidden(Forbidden):
    code = "review.forbidden"


class ReviewTooLong(Invalid):
    code = "review.too_long"
