"""Opening a DuckLake from DuckDB: the offline extensions, S3 credentials, and the two attachments.

`--lake 'postgres:dbname=… host=… user=…'` names the PostgreSQL database that holds DuckLake's catalog and,
beside it, our small mutable tables (alert rules and state, reconciliation pulls, attestations). DuckDB sees
the lake as `lake` (the default) and the same PostgreSQL database as `pg`; once migrations have made our
schema, SEARCH_PATH makes unqualified names find either, so the collector's SQL is the same as on a file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import duckdb

LAKE = "lake"
STATE = "pg"
STATE_SCHEMA = "llmledger"  # our tables, apart from DuckLake's own ducklake_* catalog tables
SEARCH_PATH = f"SET search_path = '{LAKE}.main,{STATE}.{STATE_SCHEMA}'"
EXTENSIONS = ("ducklake", "postgres", "httpfs")


class LakeConfigError(ValueError):
    """`--lake` or `--data-path` can't be used as given."""


def catalog_conninfo(spec: str) -> str:
    """The libpq connection string of a `--lake` value (`postgres:...`, or DuckDB's `ducklake:postgres:...`)."""
    conninfo = spec.removeprefix("ducklake:")
    if not conninfo.startswith("postgres:"):
        raise LakeConfigError(
            "--lake must name a PostgreSQL catalog: 'postgres:dbname=NAME host=HOST user=USER' "
            "(collectors on several machines can only share a catalog that is a server)"
        )
    conninfo = conninfo.removeprefix("postgres:").strip()
    if not conninfo:
        raise LakeConfigError("--lake 'postgres:' needs a connection string, e.g. 'postgres:dbname=llmledger'")
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise LakeConfigError("lake mode needs psycopg: pip install 'llmledger[server,lake]'") from None
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:  # not libpq's message: it can quote the string, password and all
        raise LakeConfigError(
            "--lake is not a PostgreSQL connection string libpq can read: 'postgres:dbname=… host=… user=…'"
        ) from None
    if "password" in parts:
        # A command line shows in process lists, and DuckDB quotes the whole string in its connection errors.
        raise LakeConfigError("--lake holds a password: put it in PGPASSWORD, PGPASSFILE or ~/.pgpass instead")
    return conninfo


def data_path(path: str) -> str:
    """DuckLake's DATA_PATH: an S3 URL as given, a local folder made absolute with a trailing slash."""
    if re.match(r"^[a-z][a-z0-9+]*://", path):
        if not path.startswith(("s3://", "gs://", "r2://", "az://", "abfss://")):
            raise LakeConfigError(f"--data-path {path!r}: use a folder or an s3:// URL")
        return path if path.endswith("/") else path + "/"
    folder = os.path.abspath(path)
    os.makedirs(folder, exist_ok=True)
    return folder + "/"


def load_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """Load ducklake, postgres and httpfs from their PyPI packages (built for duckdb 1.5.5; no download)."""
    try:
        import duckdb_extensions
    except ImportError:
        raise LakeConfigError(
            "lake mode needs the DuckDB extension packages: pip install 'llmledger[server,lake]'"
        ) from None
    for name in EXTENSIONS:
        duckdb_extensions.import_extension(name, con=con)


def s3_secret_sql(env: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """CREATE SECRET for S3 from the usual AWS variables (AWS_ENDPOINT_URL for S3-compatible stores), with the
    values apart from the SQL so that no log line or error message can carry them."""
    key_id = env.get("AWS_ACCESS_KEY_ID")
    secret = env.get("AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        return None
    options = ["TYPE s3", "KEY_ID ?", "SECRET ?"]
    values = [key_id, secret]
    if token := env.get("AWS_SESSION_TOKEN"):
        options.append("SESSION_TOKEN ?")
        values.append(token)
    if region := env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"):
        options.append("REGION ?")
        values.append(region)
    if endpoint := env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"):
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        options += ["ENDPOINT ?", "URL_STYLE 'path'", f"USE_SSL {'true' if parts.scheme == 'https' else 'false'}"]
        values.append(parts.netloc)
    return f"CREATE OR REPLACE SECRET llmledger_s3 ({', '.join(options)})", values


def attach(con: duckdb.DuckDBPyConnection, conninfo: str, path: str, env: Mapping[str, str] | None = None) -> None:
    """Attach the lake (as the default database) and its PostgreSQL database, on a new connection."""
    load_extensions(con)
    con.execute("SET TimeZone = 'UTC'")
    if path.startswith("s3://"):
        secret = s3_secret_sql(os.environ if env is None else env)
        if secret is not None:
            sql, values = secret
            con.execute(_inline(sql, values))
    quoted_conninfo = conninfo.replace("'", "''")
    # No data inlining: every commit writes Parquet (compaction merges the small files). Rows inlined into the
    # catalog, and flushing them out while others read or insert, is where this DuckLake version breaks: we saw
    # readers fail with an internal error that invalidated the whole database, and duckdb/ducklake#650 reports rows
    # duplicated by a flush racing an insert.
    quoted_path = path.replace("'", "''")
    con.execute(
        f"ATTACH 'ducklake:postgres:{quoted_conninfo}' AS {LAKE} (DATA_PATH '{quoted_path}', DATA_INLINING_ROW_LIMIT 0)"
    )
    con.execute(f"ATTACH '{quoted_conninfo}' AS {STATE} (TYPE postgres)")
    con.execute(f"USE {LAKE}")


def _inline(sql: str, values: list[str]) -> str:
    """DuckDB's CREATE SECRET takes no prepared parameters: quote each value as a SQL literal instead."""
    for value in values:
        sql = sql.replace("?", "'" + value.replace("'", "''") + "'", 1)
    return sql
