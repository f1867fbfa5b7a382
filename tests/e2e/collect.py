"""A client that talks to the server the way ODK Collect does (openrosa.md §3).

It follows Collect's request order and rules, not its code: formList → manifest → form XML and
media (each checked against the md5 the server advertised) → HEAD /submission before every
instance → multipart POSTs that start with ``xml_submission_file`` and are split when the next
file would exceed the advertised ``X-OpenRosa-Accept-Content-Length`` (or 100 files), with
``*isIncomplete*=yes`` on every POST but the last. A POST answered with anything but 201/202
stops the instance, as on a tablet.

Used by the end-to-end tests and by the OpenRosa benchmarks, so it only needs httpx.
"""

from __future__ import annotations

import hashlib
import mimetypes
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate

import httpx
from lxml import etree

XFORMS_LIST_NS = "http://openrosa.org/xforms/xformsList"
MANIFEST_NS = "http://openrosa.org/xforms/xformsManifest"
RESPONSE_NS = "http://openrosa.org/http/response"
#: What Collect assumes when the server does not advertise a limit.
DEFAULT_ACCEPT_LENGTH = 10_000_000
MAX_FILES_PER_POST = 100


class CollectError(Exception):
    """The server answered something Collect would report as a failure."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class FormEntry:
    form_id: str
    name: str
    version: str | None
    hash: str
    download_url: str
    manifest_url: str | None


@dataclass
class MediaEntry:
    filename: str
    hash: str
    download_url: str


@dataclass
class DeviceForm:
    """A form as stored on the tablet after a successful download."""

    entry: FormEntry
    xml: bytes
    media: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Instance:
    """A finalised instance on the tablet: its XML and the files in its folder (name → bytes)."""

    xml: bytes
    files: dict[str, bytes] = field(default_factory=dict)
    instance_id: str = ""


@dataclass
class SendResult:
    posts: int
    statuses: list[int]
    message: str


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 -- OpenRosa hashes are md5


def parse_xml(data: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(data, parser)


class CollectClient:
    """One tablet. ``base_url`` is the server URL as configured in Collect (may contain ``/key/TOKEN``)."""

    def __init__(self, base_url: str, *, auth: httpx.Auth | None = None, device_id: str | None = None,
                 timeout: float = 60.0, client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.device_id = device_id or f"collect:{secrets.token_hex(8)}"
        self.http = client or httpx.Client(auth=auth, timeout=timeout, follow_redirects=True)
        self.forms: dict[str, DeviceForm] = {}
        self.requests: list[tuple[str, str, int]] = []

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> CollectClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"X-OpenRosa-Version": "1.0", "User-Agent": "asmfield-tests CollectLike/1.0",
                "Date": formatdate(usegmt=True)}

    def _url(self, url: str) -> str:
        return url if url.startswith("http") else f"{self.base_url}{url}"

    def _params(self) -> dict[str, str]:
        return {"deviceID": self.device_id}

    def _get(self, url: str, *, expect_xml: bool = True) -> httpx.Response:
        response = self.http.get(self._url(url), params=self._params(), headers=self._headers())
        self.requests.append(("GET", url, response.status_code))
        if response.status_code != 200:
            raise CollectError(f"GET {url} answered {response.status_code}: {response.text[:300]}",
                               response.status_code)
        if "x-openrosa-version" not in response.headers:
            raise CollectError(f"GET {url}: server is not OpenRosa (no X-OpenRosa-Version header)")
        if expect_xml and "xml" not in response.headers.get("content-type", ""):
            raise CollectError(f"GET {url}: expected text/xml, got {response.headers.get('content-type')}")
        return response

    # -- forms ------------------------------------------------------------------------------

    def form_list(self) -> list[FormEntry]:
        root = parse_xml(self._get("/formList").content)
        entries = []
        for xform in root.iter(f"{{{XFORMS_LIST_NS}}}xform"):
            def text(name: str, node: etree._Element = xform) -> str | None:
                child = node.find(f"{{{XFORMS_LIST_NS}}}{name}")
                return child.text if child is not None else None

            entries.append(FormEntry(form_id=text("formID"), name=text("name"), version=text("version"),
                                     hash=text("hash"), download_url=text("downloadUrl"),
                                     manifest_url=text("manifestUrl")))
        return entries

    def manifest(self, url: str) -> list[MediaEntry]:
        root = parse_xml(self._get(url).content)
        files = []
        for node in root.iter(f"{{{MANIFEST_NS}}}mediaFile"):
            def text(name: str, node: etree._Element = node) -> str | None:
                child = node.find(f"{{{MANIFEST_NS}}}{name}")
                return child.text if child is not None else None

            files.append(MediaEntry(filename=text("filename"), hash=text("hash"), download_url=text("downloadUrl")))
        return files

    def update_forms(self) -> dict[str, DeviceForm]:
        """Download new or changed forms and media, checking every md5 like Collect does."""
        for entry in self.form_list():
            known = self.forms.get(entry.form_id)
            media = self.manifest(entry.manifest_url) if entry.manifest_url else []
            if known is None or known.entry.hash != entry.hash:
                xml = self._get(entry.download_url).content
                if f"md5:{md5_hex(xml)}" != entry.hash:
                    raise CollectError(f"form {entry.form_id}: downloaded XML does not match {entry.hash}")
                known = DeviceForm(entry=entry, xml=xml, media=dict(known.media) if known else {})
            known.entry = entry
            for item in media:
                have = known.media.get(item.filename)
                if have is not None and f"md5:{md5_hex(have)}" == item.hash:
                    continue
                content = self._get(item.download_url, expect_xml=False).content
                if f"md5:{md5_hex(content)}" != item.hash:
                    raise CollectError(f"media {item.filename}: downloaded file does not match {item.hash}")
                known.media[item.filename] = content
            self.forms[entry.form_id] = known
        return self.forms

    # -- submissions ------------------------------------------------------------------------

    def head_submission(self) -> int:
        """HEAD /submission; returns the advertised Accept-Content-Length."""
        url = f"{self.base_url}/submission"
        response = self.http.head(url, params=self._params(), headers=self._headers())
        self.requests.append(("HEAD", "/submission", response.status_code))
        if response.status_code == 401:
            raise CollectError("authentication required", 401)
        if 200 <= response.status_code < 300 and response.status_code != 204:
            raise CollectError("Is this an OpenRosa submission endpoint? (HEAD did not answer 204)",
                               response.status_code)
        try:
            return int(response.headers["x-openrosa-accept-content-length"])
        except (KeyError, ValueError):
            return DEFAULT_ACCEPT_LENGTH

    def plan_posts(self, instance: Instance, accept_length: int) -> list[list[str]]:
        """The file names of each POST, split by Collect's rule (at least one file per POST)."""
        names = list(instance.files)
        if not names:
            return [[]]
        posts: list[list[str]] = []
        current: list[str] = []
        byte_count = len(instance.xml)
        for index, name in enumerate(names):
            current.append(name)
            byte_count += len(instance.files[name])
            if index + 1 < len(names):
                following = len(instance.files[names[index + 1]])
                if len(current) + 1 > MAX_FILES_PER_POST or byte_count + following > accept_length:
                    posts.append(current)
                    current, byte_count = [], len(instance.xml)
        posts.append(current)
        return posts

    def multipart(self, instance: Instance, names: list[str], *, incomplete: bool) -> tuple[bytes, str]:
        """One multipart/form-data body as Collect builds it: XML first, then files, then the flag."""
        boundary = uuid.uuid4().hex
        out = bytearray()

        def part(disposition: str, content_type: str | None, body: bytes) -> None:
            out.extend(f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n".encode())
            if content_type:
                out.extend(f"Content-Type: {content_type}\r\n".encode())
            out.extend(b"\r\n" + body + b"\r\n")

        part('name="xml_submission_file"; filename="submission.xml"', "text/xml", instance.xml)
        for name in names:
            media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            part(f'name="{name}"; filename="{name}"', media_type, instance.files[name])
        if incomplete:
            part('name="*isIncomplete*"', None, b"yes")
        out.extend(f"--{boundary}--\r\n".encode())
        return bytes(out), f"multipart/form-data; boundary={boundary}"

    def post(self, body: bytes | Iterator[bytes], content_type: str, *, length: int | None = None) -> httpx.Response:
        headers = self._headers() | {"Content-Type": content_type}
        if length is not None:
            headers["Content-Length"] = str(length)
        response = self.http.post(f"{self.base_url}/submission", params=self._params(), headers=headers,
                                  content=body)
        self.requests.append(("POST", "/submission", response.status_code))
        return response

    def send(self, instance: Instance) -> SendResult:
        """Send one finalised instance: HEAD, then the POSTs of the split plan, stopping at a failure."""
        accept = self.head_submission()
        plan = self.plan_posts(instance, accept)
        statuses: list[int] = []
        message = ""
        for index, names in enumerate(plan):
            body, content_type = self.multipart(instance, names, incomplete=index < len(plan) - 1)
            response = self.post(body, content_type)
            statuses.append(response.status_code)
            message = response_message(response.content)
            if response.status_code not in (201, 202):
                raise CollectError(f"POST {index + 1}/{len(plan)} answered {response.status_code}: {message}",
                                   response.status_code)
        return SendResult(posts=len(plan), statuses=statuses, message=message)

    def send_cut(self, instance: Instance, *, cut_after: int) -> None:
        """Start the first POST of ``instance`` and drop the connection after ``cut_after`` bytes."""
        accept = self.head_submission()
        plan = self.plan_posts(instance, accept)
        body, content_type = self.multipart(instance, plan[0], incomplete=len(plan) > 1)

        def chunks() -> Iterator[bytes]:
            yield body[:cut_after]
            raise ConnectionAbortedError("network dropped mid-upload")

        try:
            self.post(chunks(), content_type, length=len(body))
        except (ConnectionAbortedError, httpx.HTTPError):
            return
        raise CollectError("the cut upload unexpectedly completed")


def response_message(content: bytes) -> str:
    """The first <message> of an OpenRosaResponse body (what Collect shows), else ''."""
    try:
        root = parse_xml(content)
    except etree.XMLSyntaxError:
        return ""
    node = root.find(f".//{{{RESPONSE_NS}}}message")
    if node is None:
        node = root.find(".//message")
    return (node.text or "") if node is not None else ""
