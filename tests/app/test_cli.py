"""The ``asmfield`` command line, run in-process with typer's CliRunner over a real data directory.

Errors must be one line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from sqlmodel import select
from typer.testing import CliRunner

from app.cli import cli
from app.collect import decode_settings
from app.db import session_scope
from app.models import AuditLog
from app.settings import SECRET_FILE_NAME
from tests.app.factories import all_commands

runner = CliRunner()
OPERATOR = f"cli:{getpass.getuser()}"


#: data dir -> database URL, for data dirs whose database is not the SQLite file inside them.
DATABASES: dict[Path, str] = {}


def run(data_dir: Path, *args: str, input: str | None = None, code: int = 0):  # noqa: A002
    env = {"ASMFIELD_DATA_DIR": str(data_dir)}
    if data_dir in DATABASES:
        env["ASMFIELD_DATABASE_URL"] = DATABASES[data_dir]
    result = runner.invoke(cli, list(args), env=env, input=input)
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result


def run_json(data_dir: Path, *args: str) -> dict:
    return json.loads(run(data_dir, *args, "--json").stdout)


def fails(data_dir: Path, *args: str, input: str | None = None) -> str:  # noqa: A002
    """Run a command that must fail: exit 1, one line on stderr, no traceback."""
    result = run(data_dir, *args, input=input, code=1)
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture
def data_dir(settings) -> Iterator[Path]:
    """A data directory after ``asmfield init``, over the test's own database (SQLite or PostgreSQL)."""
    DATABASES[settings.data_dir] = settings.db_url
    run(settings.data_dir, "init")
    yield settings.data_dir
    DATABASES.pop(settings.data_dir, None)


@pytest.fixture
def people(data_dir) -> Path:
    run(data_dir, "orgs", "add", "Coordination", "--kind", "coordinator")
    run(data_dir, "orgs", "add", "NGO A", "--kind", "ngo")
    run(data_dir, "users", "add", "monitor1", "--role", "monitor", "--org", "Coordination", "--password", "Kolwezi-field-77")
    return data_dir


# -- init --------------------------------------------------------------------------------


def test_init_creates_data_dir_schema_and_secret(tmp_path):
    data_dir = tmp_path / "fresh"
    result = run(data_dir, "init")
    assert f"Data directory: {data_dir}" in result.stdout
    assert "schema up to date" in result.stdout
    assert (data_dir / "asmfield.db").exists()
    assert (data_dir / "media").is_dir()
    assert len((data_dir / SECRET_FILE_NAME).read_text()) >= 48


def test_init_again_keeps_data_and_secret(people):
    secret = (people / SECRET_FILE_NAME).read_text()
    body = run_json(people, "init")
    assert body["data_dir"] == str(people)
    assert (people / SECRET_FILE_NAME).read_text() == secret
    assert [u["username"] for u in json.loads(run(people, "users", "list", "--json").stdout)] == ["monitor1"]


def test_init_demo_prints_the_demo_credentials(tmp_path):
    data_dir = tmp_path / "demo"  # SQLite only: the demo's sites and visits take a while to load
    result = run(data_dir, "init", "--demo")
    assert "Log in at http://127.0.0.1:8000/login" in result.stdout
    for username in ("admin", "coord", "monitor1", "monitor2", "cw_kipaji", "cw_kipaji2", "cw_nuru", "cw_nuru2"):
        assert f"demo-{username}-2026" in result.stdout
    users = json.loads(run(data_dir, "users", "list", "--json").stdout)
    assert {u["username"] for u in users} == {"admin", "coord", "monitor1", "monitor2", "cw_kipaji", "cw_kipaji2", "cw_nuru", "cw_nuru2"}


def test_demo_accounts_are_seeded_once(session):
    from app.demo import seed_accounts

    first = seed_accounts(session)
    assert seed_accounts(session) == first
    assert "cw_nuru" in {u["username"] for u in first["users"]}


def test_bad_database_url_is_one_line(tmp_path):
    result = runner.invoke(cli, ["init"], env={"ASMFIELD_DATA_DIR": str(tmp_path), "ASMFIELD_DATABASE_URL": "mysql://x/y"})
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("Error: bad setting ASMFIELD_DATABASE_URL")


def test_unreachable_database_is_one_line(tmp_path):
    env = {"ASMFIELD_DATA_DIR": str(tmp_path), "ASMFIELD_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    result = runner.invoke(cli, ["init"], env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: database error:") and len(result.stderr.strip().splitlines()) == 1


def test_commands_before_init_say_so(tmp_path):
    assert "run `asmfield init`" in fails(tmp_path / "nothing", "users", "list")


# -- organisations and users -------------------------------------------------------------


def test_orgs_add_and_list(data_dir):
    body = run_json(data_dir, "orgs", "add", "PACT RDC", "--kind", "ngo")
    assert body == {"id": body["id"], "name": "PACT RDC", "kind": "ngo"}
    assert "created" in run(data_dir, "orgs", "add", "Coordination", "--kind", "coordinator").stdout
    assert [o["name"] for o in json.loads(run(data_dir, "orgs", "list", "--json").stdout)] == ["Coordination", "PACT RDC"]
    assert "ngo\tPACT RDC" in run(data_dir, "orgs", "list").stdout


def test_orgs_refusals(data_dir):
    run(data_dir, "orgs", "add", "NGO A")
    assert fails(data_dir, "orgs", "add", "NGO A") == "Error: organisation 'NGO A' already exists"
    assert "unknown organisation kind 'club'" in fails(data_dir, "orgs", "add", "NGO B", "--kind", "club")


def test_users_add_with_json(people):
    body = run_json(people, "users", "add", "cw1", "--role", "caseworker", "--org", "NGO A", "--password", "Kolwezi-field-77")
    assert body["username"] == "cw1" and body["role"] == "caseworker" and isinstance(body["id"], int)


def test_users_add_prompts_for_the_password(people):
    result = run(people, "users", "add", "coord1", "--role", "coordinator", "--org", "Coordination", "--json",
                 input="Likasi-field-88\nLikasi-field-88\n")
    assert json.loads(result.stdout)["username"] == "coord1"  # the prompt went to stderr
    assert "Password" in result.stderr and "Likasi" not in result.output
    from app.accounts import authenticate
    from app.db import make_engine, session_scope
    from app.settings import Settings

    engine = make_engine(Settings(data_dir=people, database_url=DATABASES[people]))
    with session_scope(engine) as s:
        assert authenticate(s, "coord1", "Likasi-field-88") is not None
    engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("monitor1", "--role", "monitor", "--org", "Coordination", "--password", "Kolwezi-field-77"),
         "Error: user 'monitor1' already exists"),
        (("m2", "--role", "chief", "--org", "Coordination", "--password", "Kolwezi-field-77"),
         "Error: unknown role 'chief'; use one of: admin, coordinator, monitor, caseworker"),
        (("m2", "--role", "monitor", "--org", "Coordination", "--password", "12345"),
         "Error: password must have at least 10 characters"),
        (("m2", "--role", "monitor", "--org", "Coordination", "--password", ""), "Error: password is empty"),
        (("m2", "--role", "monitor", "--org", "Nowhere", "--password", "Kolwezi-field-77"),
         "Error: organisation 'Nowhere' not found"),
        (("m2", "--role", "caseworker", "--org", "Coordination", "--password", "Kolwezi-field-77"),
         "Error: caseworkers belong to a partner NGO organisation"),
    ],
)
def test_users_add_refusals_are_one_line(people, args, message):
    assert fails(people, "users", "add", *args) == message


def test_users_add_prompt_refuses_mismatched_then_empty_input(people):
    result = runner.invoke(cli, ["users", "add", "m3", "--role", "monitor", "--org", "Coordination"],
                           env={"ASMFIELD_DATA_DIR": str(people)}, input="Likasi-field-88\nother-one-1234\n")
    assert result.exit_code == 1 and "do not match" in result.stderr


def test_users_password_and_deactivate(people):
    assert "changed" in run(people, "users", "password", "monitor1", "--password", "Likasi-field-88").stdout
    assert fails(people, "users", "password", "ghost", "--password", "Likasi-field-88") == "Error: user 'ghost' not found"
    assert "deactivated" in run(people, "users", "deactivate", "monitor1").stdout
    assert "monitor1 (inactive)" in run(people, "users", "list").stdout


def test_users_add_refuses_a_guessable_password(people):
    """Issue 9 finding 14: the estimator's advice is in the one-line error."""
    error = fails(people, "users", "add", "m3", "--role", "monitor", "--org", "Coordination", "--password", "Password1!")
    assert error.startswith("Error: password is too easy to guess (strength 1 of 4, at least 3 needed): ")
    assert "commonly used password" in error


def test_password_change_and_deactivation_say_what_was_revoked(people, engine):
    """Issue 9 finding 7: the operator sees which credentials ended; the audit names the operator."""
    run(people, "devices", "add", "tablet-01", "--user", "monitor1")
    assert "0 web session(s) ended, 0 API token(s) revoked" in run(
        people, "users", "password", "monitor1", "--password", "Likasi-field-88").stdout
    assert "1 device(s) revoked" in run(people, "users", "deactivate", "monitor1").stdout
    with session_scope(engine) as s:
        rows = s.exec(select(AuditLog).where(AuditLog.action.in_(["user.password_change", "user.deactivate",
                                                                  "device.revoke"])).order_by(AuditLog.id)).all()
        assert [(r.action, r.actor_label) for r in rows] == [
            ("user.password_change", OPERATOR), ("device.revoke", OPERATOR), ("user.deactivate", OPERATOR)]


# -- devices -----------------------------------------------------------------------------


def test_devices_add_is_audited_with_the_operator_named(people, engine):
    """Issue 9 finding 8: the API lets only a device's owner register it; the CLI is the operator's
    tool on the server box and may register one for any user, audited under the operator's name."""
    run(people, "devices", "add", "tablet-op", "--user", "monitor1")
    run(people, "devices", "revoke", "tablet-op")
    with session_scope(engine) as s:
        rows = s.exec(select(AuditLog).where(AuditLog.object_type == "device").order_by(AuditLog.id)).all()
        assert [(r.action, r.actor_label, r.details.get("via")) for r in rows] == [
            ("device.create", OPERATOR, "cli"), ("device.revoke", OPERATOR, "cli")]
        assert rows[0].details["user"] == "monitor1"


def test_devices_add_writes_a_collect_qr_code(people):
    body = run_json(people, "devices", "add", "tablet-kolwezi-01", "--user", "monitor1", "--base-url", "http://10.0.0.5:8000")
    assert body["server_url"] == f"http://10.0.0.5:8000/key/{body['token']}"
    png = Path(body["qr_png"])
    assert png == people / "devices" / "tablet-kolwezi-01.png"
    decoded = zxingcpp.read_barcodes(Image.open(png), formats=zxingcpp.BarcodeFormat.QRCode)  # a QR code only: random token bytes can look like a 1D barcode too
    assert [r.text for r in decoded] == [body["collect_settings"]]
    settings = decode_settings(decoded[0].text)
    assert settings["general"]["server_url"].endswith(f"/key/{body['token']}")
    assert settings["general"]["server_url"] == body["server_url"]


def test_devices_add_text_output_and_custom_qr_path(people, tmp_path):
    result = run(people, "devices", "add", "tablet 02", "--user", "monitor1", "--qr", str(tmp_path / "q.png"))
    assert "Token (shown once): " in result.stdout
    assert "Server URL: http://127.0.0.1:8000/key/" in result.stdout
    assert (tmp_path / "q.png").exists()


def test_devices_revoke_and_list(people):
    run(people, "devices", "add", "tablet-01", "--user", "monitor1")
    assert run_json(people, "devices", "revoke", "tablet-01")["revoked_at"] is not None
    assert "tablet-01\trevoked" in run(people, "devices", "list").stdout
    assert fails(people, "devices", "revoke", "tablet-99") == "Error: device 'tablet-99' not found"


def test_devices_refusals(people):
    run(people, "devices", "add", "tablet-01", "--user", "monitor1")
    assert fails(people, "devices", "add", "tablet-01", "--user", "monitor1") == "Error: device 'tablet-01' already exists"
    assert fails(people, "devices", "add", "tablet-02", "--user", "ghost") == "Error: user 'ghost' not found"


# -- help --------------------------------------------------------------------------------


def test_every_command_has_help_text():
    missing = [" ".join(path) for path, command in all_commands() if not (command.help or "").strip()]
    assert missing == []


def test_help_runs(tmp_path):
    assert "users" in run(tmp_path, "--help").stdout
    assert "--password" in run(tmp_path, "users", "add", "--help").stdout


def test_serve_without_a_secret_key_says_what_to_do(tmp_path):
    assert "run `asmfield init`" in fails(tmp_path / "uninitialised", "serve")
