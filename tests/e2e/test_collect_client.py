"""The Collect-like client splits uploads by Collect's rule (openrosa.md §3.3), so the e2e tests
exercise what real tablets send."""

from tests.e2e.collect import CollectClient, Instance, response_message


def plan(sizes: dict[str, int], limit: int, xml_size: int = 100) -> list[list[str]]:
    instance = Instance(xml=b"x" * xml_size, files={name: b"\0" * size for name, size in sizes.items()})
    with CollectClient("http://unused") as client:
        return client.plan_posts(instance, limit)


def test_files_go_together_until_the_next_one_would_pass_the_limit():
    assert plan({"a": 400, "b": 400, "c": 400}, limit=1000) == [["a", "b"], ["c"]]
    assert plan({"a": 100, "b": 100}, limit=1000) == [["a", "b"]]


def test_a_file_bigger_than_the_limit_travels_alone_with_the_xml():
    assert plan({"a": 10, "huge": 5000, "b": 10}, limit=1000) == [["a"], ["huge"], ["b"]]


def test_no_more_than_100_files_per_post():
    posts = plan({f"f{i}": 1 for i in range(250)}, limit=10_000_000)
    assert [len(p) for p in posts] == [100, 100, 50]


def test_every_post_but_the_last_says_it_is_incomplete():
    instance = Instance(xml=b"<x/>", files={"a.jpg": b"1", "b.jpg": b"2"})
    with CollectClient("http://unused") as client:
        body, content_type = client.multipart(instance, ["a.jpg"], incomplete=True)
        last, _ = client.multipart(instance, ["b.jpg"], incomplete=False)
    assert content_type.startswith("multipart/form-data; boundary=")
    assert body.index(b'name="xml_submission_file"') < body.index(b'name="a.jpg"') < body.index(b"*isIncomplete*")
    assert b"*isIncomplete*" not in last


def test_the_message_collect_shows_is_the_first_message_element():
    body = (b'<OpenRosaResponse xmlns="http://openrosa.org/http/response" items="0">'
            b'<message nature="error">form is closed</message></OpenRosaResponse>')
    assert response_message(body) == "form is closed"
    assert response_message(b"<html>captive portal</html>") == ""
