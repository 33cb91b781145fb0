"""The PostgreSQL test server itself (tests/postgres.py): it answers, gives each test a database of
its own, listens on loopback only, is new enough, and is gone without a trace when stopped."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from tests.postgres import REQUIRE_ENV, Postgres, require_postgres, run_postgres

psycopg = pytest.importorskip("psycopg")


def _listeners(port: int) -> list[str]:
    """The local addresses (hex, as /proc/net shows them) of the sockets listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                addr, hex_port = cols[1].rsplit(":", 1)
                if int(hex_port, 16) == port and cols[3] == "0A":  # 0A: LISTEN
                    found.append(addr)
    return found


def test_server_answers_select_1_as_the_interlock_role(postgres: Postgres) -> None:
    with psycopg.connect(postgres.dsn, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        user, superuser = conn.execute("SELECT current_user, current_setting('is_superuser')").fetchone()
    assert (user, superuser) == ("interlock", "on")
    assert postgres.dsn == f"postgresql://interlock@127.0.0.1:{postgres.port}/postgres"


def test_each_postgres_url_is_a_fresh_database_of_its_own(postgres: Postgres, postgres_url: str) -> None:
    other = postgres.new_database()
    try:
        assert other != postgres_url
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (
                0,
            )
            conn.execute("CREATE TABLE plans (id int PRIMARY KEY)")
            conn.execute("INSERT INTO plans VALUES (1)")
        with psycopg.connect(other, autocommit=True) as conn:
            assert conn.execute("SELECT to_regclass('public.plans')").fetchone() == (None,)
            conn.execute("CREATE TABLE plans (id int PRIMARY KEY)")  # the same name, no clash
            assert conn.execute("SELECT count(*) FROM plans").fetchone() == (0,)
    finally:
        postgres.drop_database(other)


def test_drop_database_removes_it_even_with_a_connection_open(postgres: Postgres) -> None:
    dsn = postgres.new_database("dropme")
    dbname = dsn.rsplit("/", 1)[1]
    assert dbname.startswith("dropme_") and dbname in postgres.databases()
    with psycopg.connect(dsn, autocommit=True) as conn:
        postgres.drop_database(dsn)  # WITH (FORCE) ends this session
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    assert dbname not in postgres.databases()
    postgres.drop_database(dsn)  # gone already: not an error


def test_drop_database_refuses_the_maintenance_database(postgres: Postgres) -> None:
    with pytest.raises(ValueError, match="refusing"):
        postgres.drop_database(postgres.dsn)


def test_server_listens_on_127_0_0_1_only(postgres: Postgres) -> None:
    with psycopg.connect(postgres.dsn) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        (sockets,) = conn.execute("SHOW unix_socket_directories").fetchone()
    assert _listeners(postgres.port) == ["0100007F"]  # one listener: 127.0.0.1, no 0.0.0.0 or ::
    assert Path(sockets) == postgres.socket_dir
    assert (postgres.socket_dir / f".s.PGSQL.{postgres.port}").exists()


def test_server_is_postgresql_15_or_later(postgres: Postgres) -> None:
    assert postgres.version_num >= 150000, postgres.version
    assert postgres.version.split(".")[0].isdigit() and int(postgres.version.split(".")[0]) >= 15


def test_server_runs_unprivileged_with_durability_off(postgres: Postgres) -> None:
    owner = os.stat(f"/proc/{postgres.pid}").st_uid
    assert owner != 0 and pwd.getpwuid(owner).pw_name == postgres.os_user
    assert Path(f"/proc/{postgres.pid}/cwd").exists()
    with psycopg.connect(postgres.dsn) as conn:
        for name in ("fsync", "synchronous_commit", "full_page_writes"):
            assert conn.execute(f"SHOW {name}").fetchone() == ("off",), name


def test_run_postgres_stops_the_server_and_removes_its_dir() -> None:
    bins = require_postgres()
    with run_postgres(bins=bins) as pg:
        with psycopg.connect(pg.dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        pid, base = pg.pid, pg.data_dir.parent
    assert not Path(f"/proc/{pid}").exists()
    assert not base.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.dsn, connect_timeout=2)


def test_as_root_without_a_postgres_user_it_runs_as_a_system_user_it_removes_after() -> None:
    bins = require_postgres()
    if os.geteuid() != 0:
        pytest.skip("only root drops to another user (CI runs as root)")
    with run_postgres(bins=bins, preferred_user="interlock-no-such-user") as pg:
        assert pg.os_user.startswith("interlock-pg-")
        assert pwd.getpwnam(pg.os_user).pw_uid == os.stat(pg.data_dir).st_uid
        with psycopg.connect(pg.dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(KeyError):
        pwd.getpwnam(pg.os_user)


def test_missing_postgresql_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INTERLOCK_POSTGRES_BIN", str(tmp_path))
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL is not installed"):
        require_postgres()


def test_missing_postgresql_fails_when_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INTERLOCK_POSTGRES_BIN", str(tmp_path))
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_ENV}=1 but PostgreSQL is not installed"):
        require_postgres()
