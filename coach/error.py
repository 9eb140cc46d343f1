"""The project's root exception: every error sleepcoach raises on purpose derives from it."""

from __future__ import annotations


class ProjectError(Exception):
    """Base of sleepcoach's own errors; library errors are converted to it at the edge."""
