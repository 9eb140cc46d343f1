"""Fixtures for the integration tests: a database on SQLite always, on PostgreSQL when set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

PG_URL = os.environ.get("SLEEPCOACH_TEST_POSTGRES_URL")


def _pg_schema_url(base: str) -> Iterator[str]:
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


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(
                    PG_URL is None, reason="set SLEEPCOACH_TEST_POSTGRES_URL to run against it"
                ),
            ],
        ),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL: a SQLite file, or a private schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'coach.db'}"
    else:
        assert PG_URL is not None
        yield from _pg_schema_url(PG_URL)
