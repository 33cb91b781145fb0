"""The README's tool list is generated from the registry; this fails when they drift."""

from __future__ import annotations

from pathlib import Path

from interlock.server.docs import START_PREFIX, block, readme_block

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_tool_table_is_the_generated_one() -> None:
    text = README.read_text()
    assert text.count(START_PREFIX) == 1, "README.md needs exactly one generated tool block"
    assert readme_block(text) == block(), "run `python -m interlock.server.docs --write` and commit README.md"


def test_readme_documents_every_human_command() -> None:
    from interlock.server.cli import build_parser

    text = README.read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"interlock {name}" in text, f"README does not document `interlock {name}`"
