"""Should SQLAlchemy Core + Alembic sit under both stores? Start-up cost and code size, measured.

Run: `.venv/bin/python -m bench.team_orm --python /tmp/sqla/bin/python`
     (that interpreter has sqlalchemy, alembic and psycopg installed in a throwaway venv:
     `python -m venv /tmp/sqla && /tmp/sqla/bin/pip install sqlalchemy alembic 'psycopg[binary]'`;
     SegStudio itself never depends on them)

Start-up: each figure is the median wall time of the imports alone, each run a fresh `python -c`
process timing itself (interpreter start excluded), all with the same interpreter so only the imports
differ. Code size: a prototype of the same schema pieces both ways (`PROTOTYPE_*` below, the SQLAlchemy
one compiled to PostgreSQL DDL by that interpreter, so it is real code, not a guess), counted in
non-blank lines.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

IMPORTS = {
    "sqlite3 (local store today)": "import sqlite3",
    "psycopg (team store today)": "import psycopg",
    "sqlalchemy core + sqlite dialect": "import sqlalchemy; import sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy core + psycopg dialect": "import sqlalchemy; import sqlalchemy.dialects.postgresql.psycopg; import psycopg",
    "sqlalchemy + alembic runtime + psycopg": (
        "import sqlalchemy; import sqlalchemy.dialects.postgresql.psycopg; import psycopg; "
        "import alembic.runtime.migration; import alembic.operations; import alembic.command"
    ),
}

_TIMER = "import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"

#: The same three tables (images, mask_versions, leases) and the stale-save trigger + one policy, plain SQL,
#: as team/schema.py writes them (comments and blank lines are not counted).
PROTOTYPE_SQL = '''
MIGRATION = """
CREATE TABLE segstudio.images (
    id bigint PRIMARY KEY,
    rel_path text NOT NULL,
    sort_key text NOT NULL,
    size bigint NOT NULL,
    mtime_ns bigint NOT NULL,
    width integer,
    height integer,
    content_hash text NOT NULL,
    status text NOT NULL DEFAULT 'new'
        CHECK (status IN ('new', 'predicted', 'in_progress', 'done', 'skipped')),
    split text NOT NULL CHECK (split IN ('train', 'val')),
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    removed_at double precision,
    mask_head bigint
);
CREATE UNIQUE INDEX images_live_path ON segstudio.images(rel_path) WHERE removed_at IS NULL;
CREATE TABLE segstudio.mask_versions (
    id bigserial PRIMARY KEY,
    image_id bigint NOT NULL REFERENCES segstudio.images(id),
    parent bigint REFERENCES segstudio.mask_versions(id),
    png bytea,
    status text NOT NULL,
    author text NOT NULL DEFAULT current_user,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX mask_versions_image ON segstudio.mask_versions(image_id, id);
CREATE TABLE segstudio.leases (
    image_id bigint PRIMARY KEY REFERENCES segstudio.images(id),
    holder text NOT NULL DEFAULT current_user,
    expires_at timestamptz NOT NULL
);
ALTER TABLE segstudio.mask_versions ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_save ON segstudio.mask_versions FOR INSERT WITH CHECK (author = current_user);
CREATE TRIGGER mask_save_check BEFORE INSERT ON segstudio.mask_versions
    FOR EACH ROW EXECUTE FUNCTION segstudio.before_mask_save();
"""


def migrate(conn, version):
    if version < 1:
        with conn.transaction():
            conn.execute(MIGRATION)
            conn.execute("UPDATE segstudio.schema_version SET version = 1")
'''

#: The same pieces with SQLAlchemy Core tables and one Alembic revision (env.py and alembic.ini, which
#: Alembic also needs, are counted separately below). RLS, policies and triggers have no Core construct:
#: they stay SQL text inside op.execute.
PROTOTYPE_SQLALCHEMY = """
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

metadata = sa.MetaData(schema="segstudio")
images = sa.Table(
    "images", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("rel_path", sa.Text, nullable=False),
    sa.Column("sort_key", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("width", sa.Integer),
    sa.Column("height", sa.Integer),
    sa.Column("content_hash", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="new"),
    sa.Column("split", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float(53), nullable=False),
    sa.Column("updated_at", sa.Float(53), nullable=False),
    sa.Column("removed_at", sa.Float(53)),
    sa.Column("mask_head", sa.BigInteger),
    sa.CheckConstraint("status IN ('new', 'predicted', 'in_progress', 'done', 'skipped')"),
    sa.CheckConstraint("split IN ('train', 'val')"),
    sa.Index("images_live_path", "rel_path", unique=True, postgresql_where=sa.text("removed_at IS NULL")),
)
mask_versions = sa.Table(
    "mask_versions", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("image_id", sa.BigInteger, sa.ForeignKey("segstudio.images.id"), nullable=False),
    sa.Column("parent", sa.BigInteger, sa.ForeignKey("segstudio.mask_versions.id")),
    sa.Column("png", sa.LargeBinary),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False, server_default=sa.text("current_user")),
    sa.Column("created_at", pg.TIMESTAMP(timezone=True), nullable=False,
              server_default=sa.text("clock_timestamp()")),
    sa.Index("mask_versions_image", "image_id", "id"),
)
leases = sa.Table(
    "leases", metadata,
    sa.Column("image_id", sa.BigInteger, sa.ForeignKey("segstudio.images.id"), primary_key=True),
    sa.Column("holder", sa.Text, nullable=False, server_default=sa.text("current_user")),
    sa.Column("expires_at", pg.TIMESTAMP(timezone=True), nullable=False),
)

# alembic/versions/0001_initial.py
revision = "0001"
down_revision = None


def upgrade():
    from alembic import op

    bind = op.get_bind()
    metadata.create_all(bind)
    op.execute("ALTER TABLE segstudio.mask_versions ENABLE ROW LEVEL SECURITY")
    op.execute("CREATE POLICY own_save ON segstudio.mask_versions FOR INSERT WITH CHECK (author = current_user)")
    op.execute(
        "CREATE TRIGGER mask_save_check BEFORE INSERT ON segstudio.mask_versions "
        "FOR EACH ROW EXECUTE FUNCTION segstudio.before_mask_save()"
    )


def downgrade():
    raise NotImplementedError("versions are never dropped")
"""

#: What Alembic needs besides the revision: the smallest env.py that runs migrations on a given connection
#: (alembic.ini can be replaced by a Config built in code, counted here too).
PROTOTYPE_ALEMBIC_ENV = """
from alembic import context
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.runtime.environment import EnvironmentContext

def run(connection, folder):
    config = Config()
    config.set_main_option("script_location", folder)
    script = ScriptDirectory.from_config(config)

    def upgrade(rev, ctx):
        return script._upgrade_revs("head", rev)

    with EnvironmentContext(config, script, fn=upgrade) as env:
        env.configure(connection=connection, version_table_schema="segstudio")
        with env.begin_transaction():
            env.run_migrations()
"""

_COMPILE = """
import sys
src = open(sys.argv[1]).read()
namespace = {}
exec(compile(src, "prototype", "exec"), namespace)
from sqlalchemy.schema import CreateTable
from sqlalchemy.dialects import postgresql
ddl = [str(CreateTable(t).compile(dialect=postgresql.dialect())) for t in namespace["metadata"].sorted_tables]
print(sum(len(d.strip().splitlines()) for d in ddl))
"""


def _lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))


def import_times(python: str, runs: int) -> dict[str, float]:
    result = {}
    for name, code in IMPORTS.items():
        times = []
        for _ in range(runs + 1):  # the first run (byte-code compiled, files cached) is not counted
            out = subprocess.run(
                [python, "-c", _TIMER.format(code=code)], capture_output=True, text=True, check=True
            ).stdout
            times.append(float(out))
        result[name] = round(1000 * statistics.median(times[1:]), 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="an interpreter with sqlalchemy and alembic")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        proto = Path(tmp) / "proto.py"
        proto.write_text(PROTOTYPE_SQLALCHEMY)
        ddl_lines = int(
            subprocess.run(
                [args.python, "-c", _COMPILE, str(proto)], capture_output=True, text=True, check=True
            ).stdout
        )
    repo = Path(__file__).resolve().parents[1]
    schema_files = ["segstudio/team/schema.py", "segstudio/core/store_schema.py"]
    load = os.getloadavg()[0]
    report = {
        "bench": "team_orm",
        "load_average_1min_before": round(load, 2),
        "python": args.python,
        "runs": args.runs,
        "import_ms_median": import_times(args.python, args.runs),
        "prototype_nonblank_lines": {
            "plain_sql": _lines(PROTOTYPE_SQL),
            "sqlalchemy_core_plus_alembic_revision": _lines(PROTOTYPE_SQLALCHEMY),
            "alembic_env_in_code": _lines(PROTOTYPE_ALEMBIC_ENV),
            "postgresql_ddl_lines_the_sqlalchemy_tables_compile_to": ddl_lines,
        },
        "schema_code_today_nonblank_lines": {f: _lines((repo / f).read_text()) for f in schema_files},
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
