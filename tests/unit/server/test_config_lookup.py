"""Config and store lookup order (DESIGN.md §5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlock.server.config import load_config, store_path
from interlock.server.errors import ConfigError

MINIMAL = '[targets.prod]\nkind = "aws"\nregion = "eu-west-1"\n'


def test_explicit_config_wins_over_env_and_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.toml").write_text(MINIMAL)
    (tmp_path / "b.toml").write_text(MINIMAL.replace("prod", "envtarget"))
    (tmp_path / "interlock.toml").write_text(MINIMAL.replace("prod", "local"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INTERLOCK_CONFIG", str(tmp_path / "b.toml"))
    assert list(load_config(str(tmp_path / "a.toml")).targets) == ["prod"]
    assert list(load_config().targets) == ["envtarget"]
    monkeypatch.delenv("INTERLOCK_CONFIG")
    assert list(load_config().targets) == ["local"]
    (tmp_path / "interlock.toml").unlink()
    cfg = load_config()
    assert cfg.is_playground and list(cfg.targets) == ["playground"]


def test_store_path_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("INTERLOCK_DB", raising=False)
    monkeypatch.delenv("INTERLOCK_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    cfg = load_config()
    assert store_path(cfg) == tmp_path / "xdg" / "interlock" / "interlock.db"
    monkeypatch.setenv("INTERLOCK_DB", str(tmp_path / "env.db"))
    assert store_path(cfg) == tmp_path / "env.db"
    (tmp_path / "c.toml").write_text(f'[store]\npath = "{tmp_path / "cfg.db"}"\n' + MINIMAL)
    assert store_path(load_config(str(tmp_path / "c.toml"))) == tmp_path / "cfg.db"


def test_unreadable_config_is_refused_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(str(tmp_path / "missing.toml"))


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.toml").write_text("[targets.prod\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(str(tmp_path / "x.toml"))
