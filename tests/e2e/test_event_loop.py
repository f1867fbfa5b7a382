"""Blocking work runs off the event loop (issue 10): while one request converts a big XLSForm, the
same uvicorn worker keeps answering others. Before, the form upload route converted with pyxform
on the loop, and every request of that worker (tablets syncing) waited for it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

pytestmark = pytest.mark.e2e

#: Questions in the big form: pyxform needs a second or more to convert them.
QUESTIONS = 4000
BOUNDARY = "asmfield-big-form"


def big_xlsform() -> bytes:
    rows = "\n".join(f"| | integer | q{i} | Question {i} |" for i in range(QUESTIONS))
    return (f"| survey |\n| | type | name | label |\n{rows}\n"
            "| settings |\n| | form_id | version | name |\n| | big_form | 1 | big_form |\n").encode()


def multipart_upload(content: bytes, sent: threading.Event) -> Iterator[bytes]:
    """The upload body in chunks; ``sent`` is set once the last chunk has gone to the server."""
    body = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.md"\r\n'
            "Content-Type: text/markdown\r\n\r\n").encode() + content + f"\r\n--{BOUNDARY}--\r\n".encode()
    for start in range(0, len(body), 65536):
        yield body[start:start + 65536]
    sent.set()


def test_healthz_answers_while_a_big_xlsform_converts(live_server, world):
    """Order, not time: several ``/healthz`` round trips, each asked after the whole upload was sent,
    come back before the upload's answer (a blocked loop answers none of them until it is done)."""
    sent, done = threading.Event(), threading.Event()
    answers: list[str] = []
    upload: dict[str, httpx.Response] = {}

    def post_form() -> None:
        try:
            upload["response"] = httpx.post(
                f"{live_server.url}/api/v1/forms", content=multipart_upload(big_xlsform(), sent), timeout=120,
                headers={**world.admin.basic, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        finally:
            answers.append("upload")
            done.set()

    uploader = threading.Thread(target=post_form)
    uploader.start()
    assert sent.wait(60), "the upload body was never sent"
    with httpx.Client(base_url=live_server.url, timeout=120) as client:
        while not done.is_set():
            assert client.get("/healthz").status_code == 200
            answers.append("healthz")
    uploader.join()

    assert upload["response"].status_code == 201, upload["response"].text
    assert upload["response"].json()["xml_form_id"] == "big_form"
    assert answers[:answers.index("upload")].count("healthz") >= 3, answers[:10]
