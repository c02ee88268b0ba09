"""Connecting to the team server: the URL, the login (libpq's own ways only) and clear errors.

Passwords are never taken from the URL, written into the project, or printed: libpq reads them from
PGPASSWORD, ~/.pgpass (PGPASSFILE) or a service file (PGSERVICE), as psql does. Every driver error met
while connecting becomes one TeamError paragraph saying what to check.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from segstudio.team.errors import TeamError

__all__ = [
    "APPLICATION_NAME",
    "CONNECT_TIMEOUT",
    "MIN_SERVER_VERSION",
    "check_server_version",
    "connect",
    "describe",
    "explain",
    "require_driver",
    "url_params",
]

APPLICATION_NAME = "segstudio"
#: Seconds before an unreachable host is reported (libpq waits forever by default).
CONNECT_TIMEOUT = 5

#: A vanished network (cable out, Wi-Fi gone) is noticed in about 15 s instead of the kernel's minutes,
#: so a save waiting on it is queued locally (team.outbox) instead of hanging.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 15000,
}

URL_FORM = "postgresql://USER@HOST:PORT/DATABASE"

#: The oldest PostgreSQL major version SegStudio runs on (server_version_num). The schema needs 11+
#: (`EXECUTE FUNCTION` triggers); 13 is the oldest release we check, and the suite runs on 15. Newer
#: majors are accepted: PostgreSQL keeps the SQL and protocol used here across releases.
MIN_SERVER_VERSION = 130000
TESTED_SERVER_VERSION = "15"


def require_driver() -> ModuleType:
    """psycopg, imported only when a team project is used (single users never need it)."""
    try:
        return importlib.import_module("psycopg")
    except ImportError:
        raise TeamError(
            "team projects need the PostgreSQL driver psycopg, which is not installed. Install SegStudio's "
            "team extra (`pip install 'segstudio[team]'`) and try again; local projects work without it."
        ) from None


def url_params(url: str) -> dict[str, Any]:
    """The connection parameters of `url`, or a TeamError for a URL libpq cannot read or one holding a password."""
    if not isinstance(url, str) or not url.strip():
        raise TeamError(f"no team server URL given; use the form {URL_FORM}")
    psycopg = require_driver()
    try:
        params: dict[str, Any] = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise TeamError(
            f"the team server URL is not understood; use the form {URL_FORM} "
            "(for example postgresql://alice@192.168.1.20:5432/segstudio)"
        ) from None
    if "password" in params:
        raise TeamError(
            "the team server URL contains a password; SegStudio never stores or prints passwords. Remove it "
            "from the URL and give it the way psql reads it: a line in ~/.pgpass "
            "(HOST:PORT:DATABASE:USER:PASSWORD, mode 600), the PGPASSWORD variable, or a service file."
        )
    return params


def describe(url: str) -> str:
    """USER@HOST:PORT/DATABASE for messages (never a password)."""
    try:
        params = url_params(url)
    except TeamError:
        return "<unreadable URL>"
    user = params.get("user") or "(your login name)"
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    return f"{user}@{host}:{port}/{params.get('dbname') or user}"


def explain(error: BaseException, url: str) -> TeamError:
    """One paragraph for a driver error met while connecting (the libpq text decides which)."""
    text = str(error).strip()
    lower = text.lower()
    where = describe(url)
    if "password authentication failed" in lower or "no password supplied" in lower:
        return TeamError(
            f"the team server refused the login {where}: wrong password or unknown user. Put the password "
            "in ~/.pgpass (HOST:PORT:DATABASE:USER:PASSWORD, mode 600) or PGPASSWORD, and ask your lead "
            "whether your database role exists."
        )
    if "does not exist" in lower and "database" in lower:
        return TeamError(
            f"the database of {where} does not exist on that server. Check the name in the URL; the lead "
            "creates it with `segstudio team init-server`."
        )
    if "role" in lower and "does not exist" in lower:
        return TeamError(
            f"the user of {where} is not known to the server; ask your lead to create your role."
        )
    if "could not translate host name" in lower or "name or service not known" in lower:
        return TeamError(f"the host of {where} is not known; check the server's name or address in the URL.")
    if "connection refused" in lower or "no such file or directory" in lower or "timeout" in lower:
        return TeamError(
            f"no PostgreSQL server answers at {where}. Check that the server is running and reachable "
            "(host, port, firewall), then try again; nothing was changed."
        )
    if "pg_hba.conf" in lower:
        return TeamError(
            f"the server does not accept connections from this machine for {where}; the lead adds a line "
            "for your network to pg_hba.conf (see docs/team.md)."
        )
    first = text.splitlines()[0] if text else type(error).__name__
    return TeamError(
        f"cannot use the team server {where}: {first}. Check the URL ({URL_FORM}) and the server."
    )


def server_version_num(conn: Any) -> int:
    """The server's version as PostgreSQL reports it at login (e.g. 150004 for 15.4; no round trip)."""
    return int(conn.info.server_version)


def _release(number: int) -> str:
    major = number // 10000
    return f"{major}.{number % 10000}" if major >= 10 else f"{major}.{number // 100 % 100}.{number % 100}"


def check_server_version(conn: Any, url: str) -> None:
    """Refuse a server older than SegStudio runs on, before anything is read or written."""
    number = server_version_num(conn)
    if number < MIN_SERVER_VERSION:
        raise TeamError(
            f"the team server {describe(url)} runs PostgreSQL {_release(number)}, older than SegStudio supports "
            f"(PostgreSQL {MIN_SERVER_VERSION // 10000} or newer; tested with {TESTED_SERVER_VERSION}). Ask the "
            "server's administrator to upgrade it (pg_upgrade, or a dump restored into a newer server), or "
            "use another server; nothing was changed."
        )


def connect(url: str, announces_own_changes: bool = False) -> Any:
    """An autocommit psycopg connection (multi-statement work uses `conn.transaction()`), to a server of
    a supported PostgreSQL version. `announces_own_changes`: this session NOTIFYs its saves and leases
    itself after they commit, so the triggers do not (team.schema, schema 6: saves do not queue on the
    NOTIFY lock)."""
    psycopg = require_driver()
    url_params(url)
    extra = {"options": "-c segstudio.client_notifies=on"} if announces_own_changes else {}
    try:
        conn = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=APPLICATION_NAME,
            **KEEPALIVES,
            **extra,
        )
    except psycopg.Error as error:
        raise explain(error, url) from None
    try:
        check_server_version(conn, url)
    except BaseException:
        conn.close()
        raise
    return conn
