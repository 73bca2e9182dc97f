"""Engine, sessions and migrations."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def _ensure_sqlite_dir(url: str) -> None:
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite") else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str) -> Engine:
    _ensure_sqlite_dir(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record):  # WAL lets the roles read while one writes
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # No server-side prepared statements (psycopg prepares a query after 5 runs): PostgreSQL then keeps a generic
    # plan, made while a table was small and never re-made unless ANALYZE runs, and a fresh install's tables grow
    # from empty. The placeholder look-up stayed on such a plan as its table grew (ingest fell from 3,800 to
    # 1,200 lines/s over a 1M-line soak on a server with autovacuum off); planned each time, it uses the index.
    connect_args = {"prepare_threshold": None} if url.startswith("postgresql+psycopg") else {}
    return create_engine(url, pool_pre_ping=True, pool_size=10, connect_args=connect_args)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    _ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: commits on success, rolls back on any error."""
        with self.sessions() as s, s.begin():
            yield s

    def dispose(self) -> None:
        self.engine.dispose()


def copy_rows(s: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bool:
    """On PostgreSQL, rows go in with COPY, in the session's transaction: several times cheaper than an executemany
    of INSERTs, which PostgreSQL parses and plans row by row (prepared statements are off, see make_engine). False
    elsewhere (the caller inserts them). Values must be as the driver writes them (JSON already dumped). Errors
    come as SQLAlchemy's (IntegrityError, OperationalError), as an INSERT's would: callers retry on those."""
    conn = s.connection()
    if conn.dialect.name != "postgresql":
        return False
    import psycopg

    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    try:
        cursor = conn.connection.driver_connection.cursor()
        with cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as exc:
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc
    return True
