"""A throwaway PostgreSQL server in a temporary folder: for the test suite, the benchmark, and trying
team projects on one machine. Not for real teams (they run the distribution's server; see docs/team.md).

initdb refuses to run as root, so as root the folder is handed to the `postgres` OS user and the server
runs as that user (runuser). It listens on 127.0.0.1 only, on a free port, with password logins.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LocalServer", "find_server_binaries", "start_local_server"]

SUPERUSER = "postgres"


def find_server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl (Debian keeps them off PATH), or None."""
    candidates = []
    if found := shutil.which("pg_ctl"):
        candidates.append(Path(found).parent)
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalServer:
    root: Path
    bin_dir: Path
    port: int
    password: str
    run_as: list[str]
    fsync: bool = False  # off for tests (speed); on for benchmarks (a real server's durability)

    host = "127.0.0.1"

    def url(self, user: str = SUPERUSER, dbname: str = "postgres") -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{dbname}"

    def admin(self, dbname: str = "postgres"):
        """An autocommit superuser connection (password given directly: this server is throwaway)."""
        import psycopg

        return psycopg.connect(self.url(SUPERUSER, dbname), password=self.password, autocommit=True)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses={self.host} -c fsync={'on' if self.fsync else 'off'} -c max_connections=200"
        self.pg_ctl("-l", str(self.root / "server.log"), "-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "-w", "stop", check=False)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "server.log").read_text(errors="replace")
        return ""

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start_local_server(password: str = "segstudio-test", fsync: bool = False) -> LocalServer:
    """initdb + start; the caller must `remove()` it (tests do in a finally)."""
    bin_dir = find_server_binaries()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found")
    root = Path(tempfile.mkdtemp(prefix="segstudio-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        import pwd

        entry = pwd.getpwnam(SUPERUSER)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        run_as = ["runuser", "-u", SUPERUSER, "--"]
    server = LocalServer(root, bin_dir, _free_port(), password, run_as, fsync)
    try:
        pwfile = root / "pw"
        pwfile.write_text(password + "\n")
        if run_as:
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [*run_as, str(bin_dir / "initdb"), "-D", str(server.data_dir), "-U", SUPERUSER, "-E", "UTF8",
             "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "--no-sync"],
            capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        pwfile.unlink()
        server.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and server.pg_ctl("status", check=False).returncode != 0:
            time.sleep(0.1)
    except BaseException:
        server.remove()
        raise
    return server
