"""`service status`'s access model (``can_access``, ``can_replace``) on real files with synthetic uids,
the quick-start report, and the texts `service install` writes (config, systemd unit)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlock.server.cli import main
from interlock.server.config import parse_config
from interlock.server.service.install import (
    QUICK_START_ROWS,
    can_access,
    can_replace,
    config_template,
    systemd_unit,
    unsafe_ancestor,
)

ME = os.getuid()
# The files' owner: the test runner, or (as root, whose uid passes every check) a synthetic uid.
OWNER = ME if ME != 0 else 54_320
STRANGER = 54_321  # a uid that owns nothing here (it need not exist)
GROUP = 54_322  # a gid no file here has, unless a test gives it one


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, with the search bit for others on every directory on the way to it (put back after),
    so that what a test sees depends on the modes it sets itself."""
    changed: list[tuple[Path, int]] = []
    for d in [*reversed(tmp_path.parents), tmp_path]:
        mode = stat.S_IMODE(d.stat().st_mode)
        if not mode & stat.S_IXOTH:
            if d.stat().st_uid != ME:
                pytest.skip(f"{d} is closed to others and not ours to open")
            os.chmod(d, mode | stat.S_IXOTH)
            changed.append((d, mode))
    try:
        yield tmp_path
    finally:
        for d, mode in reversed(changed):
            os.chmod(d, mode)


def _own(path: Path) -> Path:
    if OWNER != ME:
        os.chown(path, OWNER, -1, follow_symlinks=False)
    return path


def _file(parent: Path, name: str, mode: int) -> Path:
    path = parent / name
    path.write_text("x")
    os.chmod(path, mode)
    return _own(path)


def _dir(path: Path) -> Path:
    path.mkdir(parents=True)
    return _own(path)


def _chgrp(path: Path, gid: int) -> None:
    try:
        os.chown(path, -1, gid)
    except PermissionError:
        pytest.skip("needs root to give a file a group the test runner is not in")


def test_the_owner_class_decides_for_the_owner_even_when_others_may_do_more(tree: Path) -> None:
    private = _file(tree, "private", 0o600)
    assert can_access(OWNER, [], private, "r") and can_access(OWNER, [], private, "w")
    assert not can_access(OWNER, [], private, "x")
    inverted = _file(tree, "inverted", 0o066)
    assert not can_access(OWNER, [], inverted, "r")  # the owner bits say no; other's yes does not apply
    assert can_access(STRANGER, [], inverted, "r")


def test_others_read_a_0644_file_but_not_a_0600_one_and_never_write_either(tree: Path) -> None:
    assert not can_access(STRANGER, [], _file(tree, "store", 0o600), "r")
    shared = _file(tree, "shared", 0o644)
    assert can_access(STRANGER, [], shared, "r")
    assert not can_access(STRANGER, [], shared, "w")


def test_group_bits_apply_to_members_of_the_files_group_only(tree: Path) -> None:
    path = _file(tree, "group-readable", 0o640)
    _chgrp(path, GROUP)
    assert can_access(STRANGER, [GROUP], path, "r")
    assert not can_access(STRANGER, [GROUP], path, "w")
    assert not can_access(STRANGER, [GROUP + 1], path, "r")
    closed_to_group = _file(tree, "closed-to-group", 0o604)
    _chgrp(closed_to_group, GROUP)
    assert not can_access(STRANGER, [GROUP], closed_to_group, "r")  # the group class applies, and says no
    assert can_access(STRANGER, [], closed_to_group, "r")


def test_a_directory_on_the_way_without_search_permission_closes_everything_below_it(tree: Path) -> None:
    state = _dir(tree / "state")
    inner = _dir(state / "inner")
    store = _file(inner, "interlock.db", 0o644)
    os.chmod(state, 0o700)
    assert not can_access(STRANGER, [], store, "r")
    assert can_access(OWNER, [], store, "r")
    os.chmod(state, 0o711)  # search without listing is enough to open a known name
    assert can_access(STRANGER, [], store, "r")
    os.chmod(inner, 0o744)  # read without search is not
    assert not can_access(STRANGER, [], store, "r")


def test_a_symlink_counts_the_directories_on_the_way_to_its_target(tree: Path) -> None:
    closed = _dir(tree / "closed")
    target = _file(closed, "key", 0o644)
    os.chmod(closed, 0o700)
    link = tree / "link"
    link.symlink_to(target)
    assert not can_access(STRANGER, [], link, "r")
    os.chmod(closed, 0o755)
    assert can_access(STRANGER, [], link, "r")


def test_a_missing_file_cannot_be_read_written_or_run(tree: Path) -> None:
    for want in ("r", "w", "x"):
        assert not can_access(OWNER, [], tree / "nothing", want)
        assert not can_access(0, [0], tree / "nothing" / "below", want)


def test_root_reads_and_writes_anything_but_runs_only_what_has_an_x_bit(tree: Path) -> None:
    closed = _dir(tree / "closed")
    nothing = _file(closed, "nothing", 0o000)
    os.chmod(closed, 0o700)  # closed to everyone but its owner (and root)
    assert can_access(0, [0], nothing, "r") and can_access(0, [0], nothing, "w")
    assert not can_access(0, [0], nothing, "x")
    assert not can_access(STRANGER, [], nothing, "r")
    assert can_access(0, [0], _file(tree, "script", 0o744), "x")
    assert can_access(0, [0], closed, "x")  # a directory: root may always search it


def test_want_must_be_r_w_or_x(tree: Path) -> None:
    with pytest.raises(ValueError, match="'r', 'w' or 'x'"):
        can_access(ME, [], tree, "rw")


def test_whoever_can_write_a_directory_can_replace_what_is_in_it_unless_the_sticky_bit_says_otherwise(
    tree: Path,
) -> None:
    d = _dir(tree / "etc")
    config = _file(d, "interlock.toml", 0o600)
    os.chmod(d, 0o755)
    assert not can_replace(STRANGER, [], config)
    os.chmod(d, 0o777)
    assert can_replace(STRANGER, [], config)
    assert can_replace(STRANGER, [], d / "not-yet")  # create it
    os.chmod(d, 0o1777)  # like /tmp: only the file's or the directory's owner removes an entry
    assert not can_replace(STRANGER, [], config)
    assert can_replace(STRANGER, [], d / "not-yet")
    assert can_replace(OWNER, [], config)


def test_a_directory_is_unsafe_when_one_above_it_belongs_to_someone_untrusted_or_is_open_to_writes(
    tree: Path,
) -> None:
    above = _dir(tree / "above")
    d = _dir(above / "state")
    trusted = {0, ME, OWNER}
    assert unsafe_ancestor(d, trusted) is None
    os.chmod(above, 0o777)
    assert "is writable by users other than its owner (mode 0777)" in (unsafe_ancestor(d, trusted) or "")
    os.chmod(above, 0o1777)  # like /tmp: the sticky bit keeps others from renaming what they do not own
    assert unsafe_ancestor(d, trusted) is None
    os.chmod(above, 0o755)
    assert "belongs to" in (unsafe_ancestor(d, {0} if OWNER == ME else {0, ME}) or "")


def test_status_of_a_quick_start_config_lists_what_it_does_not_stop_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "interlock.toml"
    path.write_text('[targets.prod]\nkind = "aws"\n')
    assert main(["service", "status", "--config", str(path), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "quick-start" and out["ok"] is False and out["config"] == str(path)
    assert [r["check"] for r in out["rows"]] == [r.check for r in QUICK_START_ROWS]
    by_check = {r["check"]: r for r in out["rows"]}
    assert by_check["production credentials"]["status"] == "not-hardened"
    assert by_check["approver names"]["status"] == "not-hardened"
    assert by_check["approve in a shell"]["status"] == "weakened"

    assert main(["service", "status", "--config", str(path)]) == 1
    printed = capsys.readouterr().out
    assert "mode: quick-start (no [service] section)" in printed
    assert "NOT hardened  an agent can use production credentials directly" in printed
    assert "sudo interlock service install" in printed


def test_the_config_install_writes_parses_with_its_service_section_and_one_production_target() -> None:
    text = config_template(
        "interlock", Path("/var/lib/interlock"), Path("/run/interlock"), Path("/etc/x/i.toml")
    )
    cfg = parse_config(text, "template")
    assert cfg.service is not None and cfg.service.user == "interlock"
    assert cfg.service.state_dir == "/var/lib/interlock" and cfg.service.runtime_dir == "/run/interlock"
    assert cfg.approvers.users == [] and cfg.agents.users == []
    name, target = cfg.target(None)
    assert name == "prod" and target.kind == "aws" and target.production and target.region == "us-east-1"
    assert "Add the OS users" in text  # the operator is told to fill [approvers]


def test_the_systemd_unit_runs_the_service_as_its_user_with_a_read_only_system() -> None:
    unit = systemd_unit(
        "interlock",
        "interlock",
        ["/opt/interlock/bin/interlock"],
        Path("/etc/interlock/interlock.toml"),
        Path("/var/lib/interlock"),
        Path("/run/interlock"),
    )
    lines = set(unit.splitlines())
    assert "User=interlock" in lines
    assert (
        "ExecStart=/opt/interlock/bin/interlock service run --config /etc/interlock/interlock.toml" in lines
    )
    for line in ("UMask=0077", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes"):
        assert line in lines
    assert "ReadWritePaths=/var/lib/interlock /run/interlock" in lines
    assert not any(line.startswith("RuntimeDirectory") for line in lines)


def test_the_systemd_unit_quotes_an_interpreter_path_with_a_space_and_escapes_percent() -> None:
    unit = systemd_unit(
        "svc",
        "svc",
        ["/opt/my env/bin/python", "-m", "interlock.server.entry"],
        Path("/e/i%.toml"),
        Path("/s"),
        Path("/r"),
    )
    assert (
        'ExecStart="/opt/my env/bin/python" -m interlock.server.entry service run --config /e/i%%.toml'
        in unit
    )
