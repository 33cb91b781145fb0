"""The containers toolset's undo, offline: marks, what a restore does to paths, pre-image names."""

from __future__ import annotations

from typing import Any

import pytest

from interlock.sandbox.diff import Action, Change, Snapshot
from interlock.tools import ROLLBACK_SPECS
from interlock.tools.containers import TOOLSET, undo
from interlock.tools.spec import Limits, ToolFailure
from interlock.tools.undo import IRREVERSIBLE, REVERSIBLE, RollbackArgs

WEB = "docker:container/web"
ANON = "f" * 64


def container(
    status: str = "running", mounts: list[dict[str, Any]] | None = None, **kw: Any
) -> dict[str, Any]:
    return {
        "name": "web",
        "image": "app:1",
        "image_id": "sha256:" + "a" * 64,
        "status": status,
        "env": {"MODE": "blue"},
        "ports": {},
        "mounts": mounts or [],
        "labels": {},
        "restart_policy": "no",
        "user": "",
        "workdir": "",
        "cmd": ["serve"],
        "entrypoint": None,
        "started_at": "t0",
        "finished_at": "t1",
        "pid": 1,
        "exit_code": 0,
        "restart_count": 0,
        **kw,
    }


def f(path: str, sha: str = "1" * 64, mode: str = "0644") -> dict[str, Any]:
    return {"path": path, "type": "file", "size": 3, "sha256": sha, "mode": mode}


def d(path: str, mode: str = "0755") -> dict[str, Any]:
    return {"path": path, "type": "dir", "mode": mode}


def marks_of(changes: list[Change], baseline_container: dict[str, Any] | None = None) -> dict[str, Any]:
    base = Snapshot(states={WEB: baseline_container} if baseline_container else {})
    return {m.address: m for m in undo.marks(changes, base, Limits())}


# ---------------------------------------------------------------- marks


def test_a_path_in_the_containers_own_filesystem_is_reversible_at_no_cost_from_its_committed_image() -> None:
    a = f"{WEB}:/etc/app.conf"
    m = marks_of([Change(a, Action.UPDATE, f("/etc/app.conf"), f("/etc/app.conf", "2" * 64))], container())[a]
    assert (m.how, m.bytes) == (REVERSIBLE, 0)
    assert "committed to image interlock-preimage/web" in m.why


def test_a_path_in_a_volume_or_bind_mount_is_irreversible_because_docker_commit_does_not_keep_it() -> None:
    mounts = [
        {"type": "volume", "source": "data", "destination": "/srv", "rw": True},
        {"type": "bind", "source": "/host/conf", "destination": "/conf", "rw": True},
    ]
    changes = [
        Change(f"{WEB}:/srv/state", Action.DELETE, f("/srv/state"), None),
        Change(f"{WEB}:/conf/x", Action.CREATE, None, f("/conf/x")),
    ]
    got = marks_of(changes, container(mounts=mounts))
    assert {a: m.how for a, m in got.items()} == {c.address: IRREVERSIBLE for c in changes}
    assert "volume mounted at /srv" in got[f"{WEB}:/srv/state"].why
    assert "docker commit does not keep" in got[f"{WEB}:/conf/x"].why


def test_a_file_docker_writes_itself_is_irreversible() -> None:
    a = f"{WEB}:/etc/hosts"
    m = marks_of([Change(a, Action.UPDATE, f("/etc/hosts"), f("/etc/hosts", "2" * 64))], container())[a]
    assert m.how == IRREVERSIBLE and "written by Docker itself" in m.why


def test_a_created_path_is_reversible_by_removing_it() -> None:
    a = f"{WEB}:/data/new"
    m = marks_of([Change(a, Action.CREATE, None, f("/data/new"))], container())[a]
    assert m.how == REVERSIBLE and "removed again with rm" in m.why


def test_a_removed_or_replaced_container_is_reversible_and_a_created_one_is_removed_again() -> None:
    got = marks_of([Change(WEB, Action.DELETE, container(), None)])
    assert got[WEB].how == REVERSIBLE and "comes back from it under its name" in got[WEB].why
    got = marks_of([Change(WEB, Action.REPLACE, container(), container(env={"MODE": "green"}))])
    assert got[WEB].how == REVERSIBLE
    got = marks_of([Change(WEB, Action.CREATE, None, container())])
    assert got[WEB].how == REVERSIBLE and "removed again" in got[WEB].why


def test_a_removal_with_anonymous_volumes_says_they_come_back_empty_if_it_deletes_them() -> None:
    mounts = [{"type": "volume", "source": ANON, "destination": "/var/lib/db", "rw": True}]
    got = marks_of([Change(WEB, Action.DELETE, container(mounts=mounts), None)])
    assert got[WEB].how == REVERSIBLE
    assert "/var/lib/db" in got[WEB].why and "come back empty" in got[WEB].why


def test_a_stop_is_reversible_and_an_unstartable_created_container_is_not() -> None:
    got = marks_of([Change(WEB, Action.UPDATE, container("running"), container("exited"))])
    assert got[WEB].how == REVERSIBLE
    got = marks_of([Change(WEB, Action.UPDATE, container("created"), container("running"))])
    assert got[WEB].how == IRREVERSIBLE and "comes back stopped ('exited')" in got[WEB].why


def test_a_changed_setting_of_a_container_kept_in_place_is_irreversible() -> None:
    got = marks_of([Change(WEB, Action.UPDATE, container(), container(restart_policy="always", pid=9))])
    assert got[WEB].how == IRREVERSIBLE and "restart_policy" in got[WEB].why and "pid" not in got[WEB].why


def test_no_op_changes_get_no_mark() -> None:
    assert (
        undo.marks([Change(WEB, Action.NOOP, container(), container())], Snapshot(states={}), Limits()) == []
    )


# ---------------------------------------------------------------- what a restore does to paths


def test_path_work_removes_what_was_created_and_copies_back_what_was_deleted_or_changed() -> None:
    before = {
        "/data": d("/data"),
        "/data/a": f("/data/a"),
        "/data/b": f("/data/b", mode="0600"),
        "/data/same": f("/data/same"),
        "/data/new": None,
        "/data/newdir": None,
        "/data/newdir/x": None,
    }
    now = {
        "/data": d("/data"),
        "/data/a": None,
        "/data/b": f("/data/b", mode="0644"),
        "/data/same": f("/data/same"),
        "/data/new": f("/data/new"),
        "/data/newdir": d("/data/newdir"),
        "/data/newdir/x": f("/data/newdir/x"),
    }
    remove, items = undo.path_work(before, now)
    assert remove == ["/data/newdir/x", "/data/new", "/data/newdir"]  # deepest first
    assert items == [("/data/a", False), ("/data/b", False)]


def test_path_work_copies_a_deleted_directory_in_one_read_and_replaces_a_changed_type() -> None:
    before = {"/d": d("/d"), "/d/x": f("/d/x"), "/d/y": d("/d/y"), "/d/y/z": f("/d/y/z"), "/t": f("/t")}
    now = {"/d": None, "/d/x": None, "/d/y": None, "/d/y/z": None, "/t": d("/t")}
    remove, items = undo.path_work(before, now)
    assert items == [("/d", True), ("/t", False)]
    assert remove == ["/t"]  # removed first, then copied back as the file it was


def test_path_work_is_empty_when_every_path_already_holds_its_kept_state() -> None:
    states = {"/a": f("/a"), "/gone": None}
    assert undo.path_work(states, dict(states)) == ([], [])


def test_layer_items_copy_an_added_path_with_everything_under_it_and_a_modified_one_alone() -> None:
    layer = {
        "/etc": "modified",
        "/etc/app.conf": "added",
        "/opt": "added",
        "/opt/x": "added",
        "/opt/x/y": "added",
    }
    assert undo.layer_items(layer) == [("/etc", False), ("/etc/app.conf", True), ("/opt", True)]


# ---------------------------------------------------------------- names and wiring


@pytest.mark.parametrize(
    ("name", "repo"),
    [
        ("web-1", "interlock-preimage/web-1"),
        ("My_App.v2", "interlock-preimage/my-app-v2"),
        ("a__b", "interlock-preimage/a-b"),
    ],
)
def test_the_pre_image_repository_is_a_valid_docker_reference_for_any_container_name(
    name: str, repo: str
) -> None:
    assert undo.preimage_repository(name) == repo
    assert undo.preimage_tag(name, "sha256:" + "0123456789ab" + "c" * 52) == f"{repo}:0123456789ab"


def test_paths_docker_commit_does_not_keep_are_named() -> None:
    mounts = [("tmpfs", "/run")]
    assert undo.path_gap("/run/app.pid", mounts).startswith("/run/app.pid is in the tmpfs mounted at /run")
    assert undo.path_gap("/running", mounts) == ""
    assert "Docker itself" in undo.path_gap("/etc/resolv.conf", [])


def test_the_toolset_undoes_with_its_own_hooks_and_its_rollback_rehearses_on_a_clone() -> None:
    assert TOOLSET.undo is undo.UNDO
    spec = ROLLBACK_SPECS["rollback_containers"]
    assert spec.clone is undo.rehearse_restore and spec.target_kind == "docker" and spec.watch is not None


def test_a_rollback_rehearsal_without_its_loaded_pre_image_is_refused() -> None:
    args = RollbackArgs(plan_id=3, toolset="containers", preimage="0" * 64, addresses=[WEB])
    with pytest.raises(ToolFailure, match="pre-image of plan 3 was not loaded"):
        undo.rehearse_restore(None, args, Snapshot(states={}), None, Limits())  # type: ignore[arg-type]
