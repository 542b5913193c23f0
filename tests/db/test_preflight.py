"""`migrate --preflight` against real PostgreSQL servers started by the test suite:
- PostgreSQL 16.2 with pgvector 0.6.2 from the PyPI package pgserver (what RDS gives the guide);
- Debian's PostgreSQL 15, which has no pgvector package: the preflight must fail naming both.
The URL comes from --database-url (the sandbox's secret is tested in test_migrate.py)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import skip_or_fail

from arbiter_ops.core.errors import UsageError
from arbiter_ops.db.preflight import normalize_url, preflight

PG15_BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "Pr3flightS3cretPw"


@pytest.fixture(scope="session")
def pg16() -> Iterator[str]:
    """PostgreSQL 16 + pgvector (pgserver) on a Unix socket: its URL."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:
        skip_or_fail(f"pgserver is not installed: {exc}")
    base = tempfile.mkdtemp(prefix="arbiter-ops-test-pg16-")
    try:
        server = pgserver.get_server(base, cleanup_mode="delete")
    except Exception as exc:
        shutil.rmtree(base, ignore_errors=True)
        skip_or_fail(f"pgserver did not start: {exc}")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg15() -> Iterator[str]:
    """Debian's PostgreSQL 15 (initdb + pg_ctl on a temp dir, Unix socket only): its URL."""
    if not (PG15_BIN / "initdb").exists():
        skip_or_fail("Debian's postgresql 15 is not installed (apt-get install postgresql)")
    base = tempfile.mkdtemp(prefix="arbiter-ops-test-pg15-")
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user, in a dir it owns
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            skip_or_fail("running as root and there is no postgres user to run PostgreSQL 15 as")
        os.chown(base, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data = f"{base}/data"
    start = [
        str(PG15_BIN / "pg_ctl"),
        "-D",
        data,
        "-l",
        f"{base}/server.log",
        "-w",
        "-t",
        "60",
        "-o",
        f"-c listen_addresses='' -c unix_socket_directories='{base}'",
        "start",
    ]
    initdb = [str(PG15_BIN / "initdb"), "-D", data, "--auth=trust", "--username=postgres", "--no-sync", "-E", "UTF8"]
    for step in (initdb, start):
        proc = subprocess.run([*run_as, *step], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            shutil.rmtree(base, ignore_errors=True)
            skip_or_fail(f"PostgreSQL 15 did not start ({Path(step[0]).name}): {proc.stderr.strip()[-500:]}")
    yield f"postgresql://postgres@/postgres?host={base}"
    subprocess.run([*run_as, str(PG15_BIN / "pg_ctl"), "-D", data, "-m", "fast", "stop"], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(url: str, name: str) -> Iterator[str]:
    """A new database on the server of ``url`` (the sandbox's own stays untouched); its URL."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.replace("/postgres?", f"/{name}?", 1)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _with_password(url: str) -> str:
    """The same server with a password in the URL (ignored by trust auth): it must never be printed."""
    return url.replace("postgres:@", "postgres@", 1).replace("postgres@", f"postgres:{PASSWORD}@", 1)


def test_postgres_16_with_pgvector_passes(pg16: str) -> None:
    result = preflight(pg16)
    assert result.status == "pass", result
    assert (result.server_major, result.vector_available) == (16, "0.6.2")
    assert result.server_version and result.server_version.startswith("16.")
    assert result.alembic_revision is None
    assert [c.detail for c in result.checks if c.id == "alembic"] == ["no alembic_version table (never migrated)"]


def test_the_revision_is_read_from_a_real_alembic_version_table(pg16: str, cli: Any) -> None:
    import psycopg

    with fresh_database(pg16, "preflight_alembic") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
            conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
            conn.execute("INSERT INTO alembic_version VALUES ('3f2a9c1b7d04')")
        app_url = _with_password(url).replace("postgresql://", "postgresql+asyncpg://", 1)  # the backend's form
        r = cli("--output", "json", "migrate", "--preflight", "--database-url", app_url)
        assert r.code == 0, r.text
        pre = r.json()["preflight"]
        assert (pre["status"], pre["alembic_revision"], pre["vector_installed"]) == ("pass", "3f2a9c1b7d04", "0.6.2")
        assert pre["source"] == "--database-url"
        assert PASSWORD not in r.out + r.err
        text = cli("migrate", "--preflight", "--database-url", app_url)
        assert text.code == 0
        assert "revision 3f2a9c1b7d04" in text.out and "preflight passed" in text.out
        assert PASSWORD not in text.out + text.err


def test_postgres_15_without_pgvector_fails_naming_both(pg15: str, cli: Any) -> None:
    url = _with_password(pg15)
    r = cli("migrate", "--preflight", "--database-url", url)
    assert r.code == 1, r.text
    failed = [line for line in r.out.splitlines() if line.startswith("preflight failed:")]
    assert len(failed) == 1
    assert "PostgreSQL 15" in failed[0] and "expected 16" in failed[0] and "`vector`" in failed[0]
    assert PASSWORD not in r.out + r.err
    doc = cli("--output", "json", "migrate", "--preflight", "--database-url", url).json()
    pre = doc["preflight"]
    assert (doc["ok"], pre["status"], pre["server_major"], pre["vector_available"]) == (False, "fail", 15, None)
    assert {c["id"]: c["status"] for c in pre["checks"]} == {
        "server-version": "fail",
        "vector": "fail",
        "alembic": "info",
    }


def test_a_failed_preflight_stops_migrate_before_run_task(sandbox: Any, cli: Any, pg15: str) -> None:
    r = cli("--output", "json", "migrate", "--database-url", pg15)
    assert r.code == 1, r.text
    doc = r.json()
    assert doc["error"]["code"] == "preflight-failed" and "PostgreSQL 15" in doc["error"]["message"]
    assert doc["preflight"]["status"] == "fail" and doc.get("task_arn") is None
    assert [t for t in sandbox.aws.ecs.state()["tasks"] if t.get("startedBy") == "arbiter-ops/migrate"] == []
    assert "ecs:RunTask" not in doc["api_calls"]["by_operation"]


def test_an_unreachable_database_is_skipped_with_the_reason_and_exit_3(cli: Any) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+asyncpg://arbiter:{PASSWORD}@127.0.0.1:{port}/arbiter"
    r = cli("migrate", "--preflight", "--database-url", url)
    assert r.code == 3, r.text
    assert f"preflight skipped: cannot connect to postgresql://arbiter@127.0.0.1:{port}/arbiter from here" in r.out
    assert "Connection refused" in r.out
    doc = cli("--output", "json", "migrate", "--preflight", "--database-url", url).json()
    assert (doc["ok"], doc["preflight"]["status"], doc["error"]["code"]) == (False, "skipped", "database-unreachable")
    assert PASSWORD not in r.out + r.err + str(doc)


def test_a_server_that_refuses_the_url_fails(pg16: str, cli: Any) -> None:
    url = pg16.replace("/postgres?", "/no_such_db?", 1)
    r = cli("--output", "json", "migrate", "--preflight", "--database-url", url)
    assert r.code == 1, r.text
    pre = r.json()["preflight"]
    assert pre["status"] == "fail" and 'database "no_such_db" does not exist' in pre["reason"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql+asyncpg://u:p@db:5432/arbiter", "postgresql://u:p@db:5432/arbiter"),
        ("postgresql+asyncpg://u:p@db/arbiter?ssl=require", "postgresql://u:p@db/arbiter?sslmode=require"),
        ("postgres://u:p@db/arbiter", "postgres://u:p@db/arbiter"),
        ("postgresql://postgres:@/postgres?host=/tmp/x", "postgresql://postgres:@/postgres?host=/tmp/x"),
    ],
)
def test_urls_in_the_apps_forms_become_libpq_urls(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


def test_a_url_that_is_not_postgres_is_bad_input(cli: Any) -> None:
    with pytest.raises(UsageError):
        normalize_url("mysql://u:p@db/arbiter")
    r = cli("migrate", "--preflight", "--database-url", f"redis://:{PASSWORD}@cache:6379")
    assert r.code == 2 and "expected postgresql://" in r.err
    assert PASSWORD not in r.out + r.err


def test_a_role_that_cannot_create_the_extension_fails_the_preflight(pg16: str) -> None:
    """pgvector is not a trusted extension: a plain role gets "permission denied to create extension"."""
    import psycopg

    with fresh_database(pg16, "plain_role_db") as url:
        with psycopg.connect(pg16, autocommit=True) as conn:
            conn.execute("DROP ROLE IF EXISTS app_user")
            conn.execute("CREATE ROLE app_user LOGIN")
            conn.execute('GRANT ALL ON DATABASE "plain_role_db" TO app_user')
        try:
            as_app = url.replace("postgresql://postgres", "postgresql://app_user", 1)
            result = preflight(as_app)
            assert result.status == "fail" and result.role == "app_user" and result.vector_right is None
            (vector,) = [c for c in result.checks if c.id == "vector"]
            assert vector.status == "fail" and "cannot create the extension" in vector.detail
            assert "rds_superuser" in result.reason
            as_owner = preflight(url)  # the server's superuser may
            assert as_owner.status == "pass" and as_owner.vector_right == "the role is a superuser"
            with psycopg.connect(pg16, autocommit=True) as conn:  # RDS's master user: a member of rds_superuser
                conn.execute("DROP ROLE IF EXISTS rds_superuser")
                conn.execute("CREATE ROLE rds_superuser")
                conn.execute("GRANT rds_superuser TO app_user")
            assert preflight(as_app).vector_right == "the role is a member of rds_superuser"
        finally:
            with psycopg.connect(pg16, autocommit=True) as conn:
                conn.execute("REVOKE ALL ON DATABASE plain_role_db FROM app_user")
            with psycopg.connect(pg16, autocommit=True) as conn:
                conn.execute("DROP ROLE IF EXISTS app_user")
                conn.execute("DROP ROLE IF EXISTS rds_superuser")


def test_a_text_embedding_column_fails_the_post_migration_check(pg16: str) -> None:
    """The real app's pgvector revision once swallowed its error and created rule_chunks.embedding as text."""
    import psycopg

    from arbiter_ops.db.preflight import vector_columns

    with fresh_database(pg16, "fallback_db") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE rule_chunks (id serial PRIMARY KEY, embedding text)")
        check = vector_columns(url, ["rule_chunks.embedding"])
        assert (check.status, check.detail) == (
            "fail",
            "the pgvector migration fell back to text: rule_chunks.embedding is text",
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
            conn.execute("ALTER TABLE rule_chunks ALTER COLUMN embedding TYPE vector(1024) USING NULL")
        assert vector_columns(url, ["rule_chunks.embedding"]).status == "pass"
        assert vector_columns(url, ["rule_chunks.nope"]).detail.endswith("rule_chunks.nope does not exist")
