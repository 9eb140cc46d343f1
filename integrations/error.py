"""The project's root exception for the shell; the core defines it (`coach.error`) for both."""

from __future__ import annotations

from coach.error import ProjectError

__all__ = ["ProjectError"]
