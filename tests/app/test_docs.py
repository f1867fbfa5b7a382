"""README documents every setting and every command (so the guide cannot fall behind the code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.settings import Settings
from tests.app.factories import all_commands

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_in_the_settings_table(name):
    assert re.search(rf"^\| `ASMFIELD_{name.upper()}` \|", README, re.MULTILINE), f"ASMFIELD_{name.upper()} is not documented"


def test_every_setting_has_a_description():
    assert [n for n, f in Settings.model_fields.items() if not f.description] == []


@pytest.mark.parametrize("path", [" ".join(p) for p, _ in all_commands()])
def test_every_command_is_in_the_readme(path):
    assert f"`asmfield {path}" in README, f"`asmfield {path}` is not documented in README.md"


def test_quick_start_is_two_commands():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == ["make run", "make test"]
