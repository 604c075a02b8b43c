"""The README's configuration table and the code's settings must not drift apart."""

from __future__ import annotations

from pathlib import Path

from worker.config import Settings

README = (Path(__file__).parents[3] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    names = [field.alias for field in Settings.model_fields.values() if field.alias]
    missing = [name for name in names if f"`{name}`" not in README]
    assert not missing, f"settings missing from the README's configuration table: {missing}"


def test_the_two_commands_are_in_the_readme() -> None:
    assert "scripts/demo" in README
    assert "scripts/test" in README
    ci = (Path(__file__).parents[3] / ".ci" / "run").read_text()
    assert "scripts/test" in ci
