"""Fixtures for the integration tests: a database on SQLite always, on PostgreSQL when set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integrations.databases import PG_URL, pg_schema_url


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
        yield from pg_schema_url(PG_URL)
