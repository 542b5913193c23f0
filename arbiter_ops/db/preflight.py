"""Database preflight: is this PostgreSQL ready for the app's migrations?

Checks, over one short psycopg 3 connection:
- ``server-version``: the server's major version is the expected one. The guide runs RDS PostgreSQL 16;
  every environment is expected to run 16 too (a staging on another major would test migrations against
  a different server than production's), so callers pass :data:`EXPECTED_MAJOR` everywhere;
  ``expected_major=None`` only reports.
- ``vector``: the pgvector extension is available (``pg_available_extensions``) or already installed
  (``pg_extension``): the app's first migration runs ``CREATE EXTENSION vector``.
- ``alembic``: the current revision(s) in ``alembic_version`` (information, never a failure).

A database that cannot be reached from here is ``skipped`` with the reason: RDS usually sits in private
subnets that only the tasks reach. A server that answers and refuses (wrong password, no such database or
role) is a ``fail``: the app uses the same URL. The password never leaves this module: it is registered
with the redactor and every URL shown is rebuilt without it.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from arbiter_ops.core.errors import UsageError
from arbiter_ops.core.redact import REDACTOR

EXPECTED_MAJOR = 16
CONNECT_TIMEOUT = 5  # seconds; libpq's minimum is 2
STATEMENT_TIMEOUT_MS = 5000

Status = Literal["pass", "fail", "skipped"]
# Server answers that mean "reachable, and this URL is wrong" rather than "cannot get there from here".
_REFUSED_MARKERS = ("password authentication failed", "does not exist", "authentication failed")
# asyncpg's `ssl=` query parameter, in libpq's words.
_ASYNCPG_SSL = {"true": "require", "false": "disable", "1": "require", "0": "disable"}


@dataclass
class Check:
    id: str
    status: Literal["pass", "fail", "info"]
    detail: str


@dataclass
class PreflightResult:
    status: Status
    target: str  # the URL without its password
    reason: str = ""  # why it failed or was skipped, one line
    server_version: str | None = None
    server_major: int | None = None
    expected_major: int | None = None
    vector_available: str | None = None  # default_version in pg_available_extensions
    vector_installed: str | None = None  # extversion in pg_extension
    role: str | None = None  # current_user
    vector_right: str | None = None  # why this role may CREATE EXTENSION vector; None: it may not
    alembic_revision: str | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "pass"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def normalize_url(database_url: str) -> str:
    """A libpq URL for the app's URL: ``postgresql+asyncpg://`` loses its driver suffix (and asyncpg's
    ``ssl=`` becomes ``sslmode=``); ``postgres://`` is libpq's own alias and stays."""
    url = database_url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise UsageError("the database URL is not a URL (expected postgresql://user:password@host:port/db)")
    base = scheme.split("+", 1)[0].lower()
    if base not in ("postgresql", "postgres"):
        raise UsageError(f"the database URL has scheme {scheme!r}; expected postgresql:// (or postgres://)")
    if "+" in scheme:
        parts = urllib.parse.urlsplit(f"{base}://{rest}")
        query = []
        for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
            if key == "ssl":
                key, value = "sslmode", _ASYNCPG_SSL.get(value.lower(), value)
            query.append((key, value))
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, safe="/")))
    return f"{base}://{rest}"


def describe_target(conninfo: dict[str, Any]) -> str:
    """``postgresql://user@host:port/db`` (a socket directory as ``?host=DIR``), never the password."""
    user = conninfo.get("user") or ""
    host = str(conninfo.get("host") or "")
    port = conninfo.get("port")
    db = conninfo.get("dbname") or user
    who = f"{user}@" if user else ""
    if host and not host.startswith("/"):
        return f"postgresql://{who}{host}{f':{port}' if port else ''}/{db}"
    query = "&".join(f"{k}={v}" for k, v in (("host", host), ("port", port)) if v)
    return f"postgresql://{who}/{db}" + (f"?{query}" if query else "")


def preflight(
    database_url: str, expected_major: int | None = EXPECTED_MAJOR, *, connect_timeout: float = CONNECT_TIMEOUT
) -> PreflightResult:
    """Connect and check version, pgvector and the Alembic revision. Never raises for an unreachable or
    refusing server (that is the result); a URL that is not a PostgreSQL URL is bad input (exit 2)."""
    REDACTOR.add(database_url)
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return PreflightResult(
            "skipped",
            "(unknown)",
            reason="psycopg 3 is not installed here (pip install 'psycopg[binary]')",
            expected_major=expected_major,
        )
    url = normalize_url(database_url)
    REDACTOR.add(url)
    try:
        conninfo = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise UsageError(f"the database URL is not valid: {_first_line(exc)}") from None
    REDACTOR.add(conninfo.get("password"))
    target = describe_target(conninfo)
    result = PreflightResult("pass", target, expected_major=expected_major)
    try:
        conn = psycopg.connect(
            url,
            connect_timeout=max(2, int(connect_timeout)),
            autocommit=True,
            application_name="arbiter-ops preflight",
        )
    except psycopg.ProgrammingError as exc:  # libpq rejected the URL's options before connecting
        raise UsageError(f"the database URL is not valid: {_first_line(exc)}") from None
    except psycopg.Error as exc:
        message = _first_line(exc)
        if any(marker in message for marker in _REFUSED_MARKERS):
            result.status, result.reason = "fail", f"the server refused the connection: {message}"
            result.checks.append(Check("connect", "fail", result.reason))
        else:
            result.status, result.reason = "skipped", f"cannot connect to {target} from here: {message}"
        return result
    try:
        with conn:
            conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            _inspect(conn, result)
    except psycopg.Error as exc:
        result.status, result.reason = "skipped", f"lost the connection to {target}: {_first_line(exc)}"
        return result
    _judge(result)
    return result


def _inspect(conn: Any, result: PreflightResult) -> None:
    num = int(conn.execute("SHOW server_version_num").fetchone()[0])
    result.server_major = num // 10000
    result.server_version = str(conn.execute("SHOW server_version").fetchone()[0]).split(" ", 1)[0]
    row = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    result.vector_available = row[0] if row else None
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    result.vector_installed = row[0] if row else None
    result.role = str(conn.execute("SELECT current_user").fetchone()[0])
    result.vector_right = _extension_right(conn) if result.vector_available and not result.vector_installed else None
    # to_regclass follows search_path, as Alembic does with its default version_table_schema.
    if conn.execute("SELECT to_regclass('alembic_version')").fetchone()[0] is None:
        result.alembic_revision = None
        result.checks.append(Check("alembic", "info", "no alembic_version table (never migrated)"))
        return
    revisions = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version ORDER BY 1").fetchall()]
    result.alembic_revision = ", ".join(revisions) if revisions else None
    detail = f"revision {result.alembic_revision}" if revisions else "alembic_version is empty (at base)"
    if len(revisions) > 1:
        detail = f"revisions {result.alembic_revision} (several heads)"
    result.checks.append(Check("alembic", "info", detail))


def _judge(result: PreflightResult) -> None:
    problems: list[str] = []
    major, expected = result.server_major, result.expected_major
    if expected is None:
        version = Check("server-version", "info", f"PostgreSQL {result.server_version}")
    elif major == expected:
        version = Check("server-version", "pass", f"PostgreSQL {result.server_version} (expected {expected})")
    else:
        version = Check(
            "server-version", "fail", f"PostgreSQL {result.server_version} (major {major}), expected {expected}"
        )
        problems.append(f"PostgreSQL {major} (server {result.server_version}), expected {expected}")
    if result.vector_installed:
        vector = Check("vector", "pass", f"pgvector {result.vector_installed} installed")
    elif result.vector_available and result.vector_right:
        vector = Check(
            "vector",
            "pass",
            f"pgvector {result.vector_available} available; CREATE EXTENSION vector will work: {result.vector_right}",
        )
    elif result.vector_available:
        # pgvector is not a trusted extension: a plain role gets "permission denied to create extension".
        vector = Check(
            "vector",
            "fail",
            f"pgvector {result.vector_available} is available, but the role {result.role} cannot create the extension "
            "(it is neither a superuser nor a member of rds_superuser)",
        )
        problems.append(
            f"the role {result.role} cannot create the extension vector: run `CREATE EXTENSION vector` once as the "
            "master user (on RDS, a member of rds_superuser), or grant it rds_superuser"
        )
    else:
        vector = Check("vector", "fail", "the `vector` extension is not available (not in pg_available_extensions)")
        problems.append("the `vector` extension (pgvector) is not available")
    result.checks[:0] = [version, vector]
    if problems:
        result.status = "fail"
        result.reason = "; ".join(problems)


def _extension_right(conn: Any) -> str | None:
    """Why the connected role may run CREATE EXTENSION vector (pgvector is not trusted): a superuser may; on RDS
    the master user is not a superuser but a member of rds_superuser, which may; else, only a trusted extension
    with the CREATE privilege on the database. None: it may not."""
    if conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
        return "the role is a superuser"
    row = conn.execute(
        "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = 'rds_superuser'"
    ).fetchone()
    if row and row[0]:
        return "the role is a member of rds_superuser"
    row = conn.execute(
        "SELECT v.trusted FROM pg_available_extension_versions v JOIN pg_available_extensions e "
        "ON e.name = v.name AND e.default_version = v.version WHERE v.name = 'vector'"
    ).fetchone()
    if row and row[0] and conn.execute("SELECT has_database_privilege(current_database(), 'CREATE')").fetchone()[0]:
        return "the extension is trusted and the role may create in this database"
    return None


def vector_columns(database_url: str, columns: list[str], *, connect_timeout: float = CONNECT_TIMEOUT) -> Check:
    """After a migration: each ``table.column`` must be of type vector (the real app's pgvector revision once caught
    its own error and created ``rule_chunks.embedding`` as text while ``alembic upgrade head`` exited 0:
    gndumbri/arbiter-ai backend/alembic/versions/d1e2f3a4b5c6_add_pgvector_and_rule_chunks.py). ``info`` when the
    database cannot be reached from here (nothing was checked)."""
    import psycopg

    REDACTOR.add(database_url)
    url = normalize_url(database_url)
    REDACTOR.add(url)
    try:
        conn = psycopg.connect(url, connect_timeout=max(2, int(connect_timeout)), autocommit=True)
    except psycopg.Error as exc:
        return Check("vector-columns", "info", f"not checked: cannot connect from here ({_first_line(exc)})")
    wrong: list[str] = []
    with conn:
        for spec in columns:
            table, _, column = spec.rpartition(".")
            row = conn.execute(
                "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND NOT a.attisdropped",
                (table, column),
            ).fetchone()
            if row is None:
                wrong.append(f"{spec} does not exist")
            elif not str(row[0]).startswith("vector"):
                wrong.append(f"{spec} is {row[0]}")
    if wrong:
        return Check("vector-columns", "fail", f"the pgvector migration fell back to text: {'; '.join(wrong)}")
    return Check("vector-columns", "pass", f"{', '.join(columns)}: vector")


def _first_line(exc: BaseException) -> str:
    """libpq's first line says what went wrong (the rest is advice such as "Is the server running...")."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return REDACTOR(lines[0] if lines else type(exc).__name__)
