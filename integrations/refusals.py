"""How many refusals are logged, stored and published one by one: a few a minute; the rest counted.

Anyone who can publish on the broker can send garbage as fast as the broker takes it. Each
refusal used to be a log line, an error record on `<prefix>/errors` and a stored row (an excerpt
and the error), so a flood of junk filled the disk (20,000 junk messages: +98.5 MB in 30 s) and
the log. Now, in each minute, the first refusals of a topic (`mqtt.refusals_per_minute`, 5 by
default), and no more than four times as many over all topics, are handled in full; the others
are counted per topic. When the minute is over, each topic that had more says so once, in the
log, on `<prefix>/errors` and in storage: "topic X: 12,345 more refusals in the last minute, not
logged or stored one by one (the last: ...)". At most `NAMED` topics are named; the rest are
summed in one record (and at most `TRACKED` topics are counted one by one, so a flood over
endless topics under a wildcard filter is bounded too). Nothing is hidden, and a minute of any
flood stores and publishes at most 4 x 5 + 10 + 1 = 31 records with the defaults.

The consumer asks `admit` for each refusal and `due` for the summaries of a minute that has ended
(it also wakes for them when the inbox is quiet: `next_due`). Time is the arrival time of the
messages, as POSIX seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Refusals of one topic handled in full per minute, by default.
PER_TOPIC: Final = 5
#: Refusals of all topics handled in full per minute, as a multiple of those of one topic.
TOTAL_TIMES: Final = 4
#: Topics named in a minute's summaries; the others are summed in one.
NAMED: Final = 10
#: Topics counted one by one in a window (a wildcard device filter lets a flood use any number
#: of topics): refusals on further topics are counted together.
TRACKED: Final = 1000
#: The length of a window, in seconds.
WINDOW_S: Final = 60.0
#: The topic of the summary that sums the topics not named.
OTHER_TOPICS: Final = "(other topics)"


@dataclass(slots=True)
class _Counted:
    """Refusals of one topic in the window: handled in full, and counted only."""

    full: int = 0
    more: int = 0
    last: str = ""


@dataclass(frozen=True, slots=True)
class Summary:
    """The refusals of a topic (or of the topics not named) that were counted, not handled."""

    topic: str
    count: int
    last_error: str

    @property
    def text(self) -> str:
        """The words for the log, `<prefix>/errors` and storage."""
        where = "other topics" if self.topic == OTHER_TOPICS else f"topic {self.topic}"
        return (
            f"{where}: {self.count:,} more refusals in the last minute, not logged or stored one "
            f"by one (the last: {self.last_error})"
        )


class RefusalLimit:
    """Which refusals are handled in full this minute, and what was only counted."""

    __slots__ = ("_full", "_start", "_topics", "per_topic", "total")

    def __init__(self, per_topic: int = PER_TOPIC) -> None:
        self.per_topic = per_topic
        self.total = TOTAL_TIMES * per_topic
        self._start: float | None = None
        self._full = 0
        self._topics: dict[str, _Counted] = {}

    def admit(self, topic: str, error: str, at: float) -> bool:
        """Whether this refusal is handled in full (logged, stored, published); else counted.

        Call `due` first: a refusal after the window's end starts a new one.
        """
        if self._start is None:
            self._start = at
        counted = self._topics.get(topic)
        if counted is None:
            if len(self._topics) >= TRACKED:
                counted = self._topics.setdefault(OTHER_TOPICS, _Counted(full=self.per_topic))
            else:
                counted = self._topics[topic] = _Counted()
        if counted.full < self.per_topic and self._full < self.total:
            counted.full += 1
            self._full += 1
            return True
        counted.more += 1
        counted.last = error
        return False

    def next_due(self) -> float | None:
        """When the window ends, if something was counted in it (then its summaries are due)."""
        if self._start is None or not any(c.more for c in self._topics.values()):
            return None
        return self._start + WINDOW_S

    def due(self, now: float, *, force: bool = False) -> list[Summary]:
        """The summaries of a window that has ended (or of this one, with `force`: a stop)."""
        if self._start is None or (now < self._start + WINDOW_S and not force):
            return []
        counted = [(topic, c) for topic, c in self._topics.items() if c.more]
        self._start, self._full, self._topics = None, 0, {}
        counted.sort(key=lambda tc: (tc[0] == OTHER_TOPICS, -tc[1].more))
        named = [(topic, c) for topic, c in counted if topic != OTHER_TOPICS][:NAMED]
        out = [Summary(topic, c.more, c.last) for topic, c in named]
        rest = counted[len(named) :]
        if rest:
            total = sum(c.more for _, c in rest)
            out.append(Summary(OTHER_TOPICS, total, rest[-1][1].last))
        return out
