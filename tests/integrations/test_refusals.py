"""Tests of the refusal limit: a few refusals a minute in full per topic, the rest counted."""

from __future__ import annotations

from integrations.refusals import NAMED, OTHER_TOPICS, TRACKED, RefusalLimit, Summary


def test_the_first_of_a_minute_are_admitted_and_the_rest_counted_then_summed_up() -> None:
    limit = RefusalLimit(per_topic=3)
    admitted = [limit.admit("a", f"bad {i}", 100.0 + i) for i in range(10)]
    assert admitted == [True] * 3 + [False] * 7
    assert limit.next_due() == 160.0
    assert limit.due(159.0) == []
    (summary,) = limit.due(160.0)
    assert summary == Summary("a", 7, "bad 9")
    assert summary.text == (
        "topic a: 7 more refusals in the last minute, not logged or stored one by one "
        "(the last: bad 9)"
    )
    # A new minute starts afresh, and nothing is due until something is counted in it.
    assert limit.next_due() is None
    assert limit.admit("a", "bad", 161.0)
    assert limit.next_due() is None


def test_all_topics_together_get_four_times_one_topics_share() -> None:
    limit = RefusalLimit(per_topic=2)
    admitted = [limit.admit(f"t{i}", "bad", 0.0) for i in range(12)]
    assert admitted.count(True) == 8
    assert {s.topic for s in limit.due(0.0, force=True)} == {"t8", "t9", "t10", "t11"}


def test_a_flood_over_many_topics_names_a_few_and_sums_the_rest() -> None:
    limit = RefusalLimit(per_topic=1)
    for i in range(TRACKED + 500):
        for _ in range(1 + (i == 7)):
            limit.admit(f"t{i}", f"bad {i}", 0.0)
    summaries = limit.due(60.0)
    assert len(summaries) == NAMED + 1
    assert summaries[0] == Summary("t7", 2, "bad 7")
    other = summaries[-1]
    assert other.topic == OTHER_TOPICS
    total = sum(s.count for s in summaries)
    assert total == TRACKED + 500 + 1 - 4  # every refusal but the four admitted is counted
    assert other.text.startswith("other topics: ")
