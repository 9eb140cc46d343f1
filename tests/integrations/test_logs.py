"""Tests of the daemon's logging: warnings of Python and numpy go through the log's format."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator

import numpy as np
import pytest

from integrations.logs import setup_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    logging.captureWarnings(False)
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_a_numpy_warning_is_a_json_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    """numpy's overflow warning used to reach stderr as bare lines, past the JSON log."""
    setup_logging("info", "json")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        np.square(np.array([1e308]))
    lines = capsys.readouterr().err.splitlines()
    assert lines
    docs = [json.loads(line) for line in lines]
    assert docs[0]["logger"] == "py.warnings"
    assert docs[0]["level"] == "warning"
    assert "RuntimeWarning: overflow" in docs[0]["message"]
