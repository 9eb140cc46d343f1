"""PostgreSQL for the integration tests: the server named by the environment, a schema per use."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg

PG_URL = os.environ.get("SLEEPCOACH_TEST_POSTGRES_URL")


def pg_schema_url(base: str) -> Iterator[str]:
    """A fresh schema per test, so tests never see each other's (or anyone else's) tables."""
    schema = f"sc_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
