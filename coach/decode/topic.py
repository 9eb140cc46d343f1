"""MQTT topics: which device (or whose command topic) a message belongs to, and valid filters.

A device's `topic` is a topic or an MQTT topic filter: `+` stands for one level, a final `#` for
the rest (MQTT 5 §4.7). `filter_problem` is the config's check of a filter and `TopicRouter` the
matching, so what the config accepts is exactly what the router can match. Exact topics are
looked up in a dict; filters are tried after them, in config order. A person's command topic is
`<prefix>/<person>/command`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only for annotations: the config model imports this module to check its device topics.
    from coach.config import Config, Device


def filter_problem(topic: str) -> str | None:
    """Why `topic` is not a valid topic filter (a `+` or `#` inside a level), or None."""
    levels = topic.split("/")
    if any("#" in p and (p != "#" or i != len(levels) - 1) for i, p in enumerate(levels)) or any(
        p != "+" and "+" in p for p in levels
    ):
        return "wildcards + and # must stand alone in a topic level (# only at the end)"
    return None


def is_filter(topic: str) -> bool:
    """Whether `topic` has wildcards (a filter matching many topics) rather than being one."""
    return "+" in topic or "#" in topic


def matches(filter_levels: tuple[str, ...], topic: str) -> bool:
    """Whether `topic` matches a filter split into its levels (MQTT 5 §4.7)."""
    if topic.startswith("$"):
        # Wildcards never match $SYS-style topics at the first level (MQTT 5 §4.7.2).
        return False
    levels = topic.split("/")
    for i, want in enumerate(filter_levels):
        if want == "#":
            return True
        if i >= len(levels):
            return False
        if want != "+" and want != levels[i]:
            return False
    return len(levels) == len(filter_levels)


@dataclass(frozen=True, slots=True)
class CommandRoute:
    """The topic is a person's command topic `<prefix>/<person>/command`."""

    person: str


class TopicRouter:
    """Which device (or whose command topic) a topic belongs to; built once per config.

    `prefix` is the coach's topic prefix (the MQTT settings' `topic_prefix`): commands arrive on
    `<prefix>/<person>/command`.
    """

    __slots__ = ("_exact", "_prefix", "_wild")

    def __init__(self, config: Config, prefix: str) -> None:
        self._exact: dict[str, Device] = {}
        self._wild: list[tuple[tuple[str, ...], Device]] = []
        for device in config.devices:
            if is_filter(device.topic):
                self._wild.append((tuple(device.topic.split("/")), device))
            else:
                # The first device listed on a topic wins, as it does for wildcards.
                self._exact.setdefault(device.topic, device)
        self._prefix = prefix + "/"

    def route(self, topic: str) -> Device | CommandRoute | None:
        """The device publishing on `topic`, a person's command topic, or None if not ours.

        Exact device topics win, then `<prefix>/+/command` (the person is not checked here),
        then wildcard device filters in config order. Wildcard filters never match the coach's own
        topics under `<prefix>/`, so a `#` device cannot feed the coach its own nudges and errors.
        """
        device = self._exact.get(topic)
        if device is not None:
            return device
        if topic.startswith(self._prefix):
            rest = topic[len(self._prefix) :]
            person, sep, tail = rest.partition("/")
            if sep and tail == "command" and person and person not in ("+", "#"):
                return CommandRoute(person)
            return None
        for levels, device in self._wild:
            if matches(levels, topic):
                return device
        return None
