"""MQTT topics: which device (or whose command topic) a message belongs to, and valid filters.

A device's `topic` is a topic or an MQTT topic filter: `+` stands for one level, a final `#` for
the rest (MQTT 5 §4.7). `filter_problem` is the config's check of a filter and `TopicRouter` the
matching, so what the config accepts is exactly what the router can match. `own_topic_problem`
keeps a device off the topics the coach itself uses and `level_problem` checks the prefixes the
coach builds those on: the config calls both, so the topic rules live here alone. Exact topics
are looked up in a dict; filters are tried after them, in config order. A person's command topic
is `<prefix>/<person>/command`.
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


def level_problem(topic: str, what: str) -> str | None:
    """Why `topic` (a prefix the coach builds its own topics on) is not usable, or None.

    `what` names it in the message ("the topic prefix"). An empty level (`/`, `sc/`, `a//b`)
    makes topics no device or dashboard spells the same way twice, a leading `$` is the broker's
    own namespace (`$SYS`: clients may not publish there), wildcards are for filters only.
    """
    if not topic:
        return f"{what} must not be empty"
    if "\x00" in topic:
        return f"{what} must not contain a NUL character"
    if topic.startswith("$"):
        return f"{what} must not start with $: topics starting with $ ($SYS/...) are the broker's"
    if "+" in topic or "#" in topic:
        return f"{what} must not contain the wildcards + or #"
    if "" in topic.split("/"):
        return f"{what} must not have an empty level (a / at either end, or //), got {topic!r}"
    return None


def overlaps(a: str, b: str) -> bool:
    """Whether some topic matches both filters `a` and `b` (MQTT 5 §4.7; `x/#` matches `x`)."""
    la, lb = a.split("/"), b.split("/")
    i = 0
    while True:
        end_a, end_b = i >= len(la), i >= len(lb)
        if (not end_a and la[i] == "#") or (not end_b and lb[i] == "#"):
            return True
        if end_a or end_b:
            return end_a and end_b
        if "+" not in (la[i], lb[i]) and la[i] != lb[i]:
            return False
        i += 1


def own_topic_problem(topic: str, own: list[tuple[str, str]]) -> str | None:
    """Why a device may not use `topic` (a topic or a filter), or None.

    `own` lists the filters the coach itself publishes on or listens to, each with what it is
    (`("sleepcoach/#", "the coach's own topics")`). A device topic that overlaps one would feed
    the coach its own messages (an error about an error about an error: an endless loop) or take
    another program's; a bare `#` or `+` takes everything; a `$` topic is the broker's.
    """
    if topic in ("#", "+"):
        return (
            f"a bare {topic} takes every message on the broker, the coach's own too: "
            "name the device's topic (home/bedroom/bed) or its subtree (zigbee2mqtt/bed/#)"
        )
    if topic.startswith("$"):
        return "topics starting with $ ($SYS/...) are the broker's own, never a device's"
    for own_filter, what in own:
        if overlaps(topic, own_filter):
            return (
                f"{topic!r} overlaps {own_filter} ({what}): the coach would take messages there "
                "for the device's; use a topic outside it"
            )
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
