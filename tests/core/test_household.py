"""Households: a shared coffee maker asks whose drink it was; the answer moves only that person.

Alex (bedtime 22:30) and Sam (bedtime 23:15) share the kitchen's coffee maker. With the default
9 h cutoff, Alex's last moment for caffeine is 13:30 and Sam's 14:15; a 15:05 double espresso
(126 mg) is past both.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from coach.action import RecordDrink, UpdateState, WithdrawNudge
from coach.config import Config
from coach.event import DrinkClaimed, SharedDrinkBrewed
from coach.state import dump_state, load_state
from tests.core.conftest import DAY, Replay, t

PEOPLE = [
    {"id": "alex", "bedtime": "22:30", "wake": "06:30"},
    {"id": "sam", "name": "Sam", "bedtime": "23:15", "wake": "07:15"},
    {"id": "kim", "bedtime": "22:00", "wake": "06:00"},
]


def household(rules: dict[str, Any] | None = None) -> Config:
    """Alex and Sam share the kitchen's maker; Kim lives there too but has their own."""
    return Config.model_validate(
        {
            "timezone": "Europe/Berlin",
            "people": PEOPLE,
            "devices": [
                {"id": "kitchen", "kind": "coffee_maker", "topic": "k", "person": ["alex", "sam"]},
                {"id": "office", "kind": "coffee_maker", "topic": "o", "person": "kim"},
            ],
            "rules": rules or {},
        }
    )


def brew(hhmm: str, drink: str = "espresso", ml: float | None = 60.0) -> SharedDrinkBrewed:
    """The kitchen's shared maker brewed a drink."""
    return SharedDrinkBrewed(
        person="*",
        ts=t(hhmm),
        source="kitchen",
        key=f"kitchen|{hhmm}",
        people=("alex", "sam"),
        drink=drink,  # type: ignore[arg-type]
        volume_ml=ml,
    )


def mine(person: str, hhmm: str, nudge_id: str | None = None) -> DrinkClaimed:
    """`{"command": "mine"}` on the person's command topic."""
    return DrinkClaimed(person=person, ts=t(hhmm), nudge_id=nudge_id)


def started(config: Config | None = None) -> Replay:
    replay = Replay(config=config or household())
    replay.start(t("07:00"))
    return replay


def caffeine_of(replay: Replay, person: str) -> float:
    return sum(mg for _, mg in replay.state.person(person).doses)


def last_state(replay: Replay, person: str) -> dict[str, Any]:
    return [a.state for a in replay.actions if isinstance(a, UpdateState) and a.person == person][
        -1
    ]


def test_a_shared_brew_asks_each_listed_person_and_guesses_nobody() -> None:
    replay = started()
    replay.feed([brew("15:05")])
    questions = [n for n in replay.nudges if n.rule == "household.whose"]
    assert [q.id for q in questions] == [
        f"household.whose:alex:{DAY}:1505",
        f"household.whose:sam:{DAY}:1505",
    ]
    for q in questions:
        assert q.severity == "info"
        assert q.actions == ("mine",)
        assert "espresso" in q.message
        assert "15:05" in q.message
        assert "126 mg" in q.message
        assert q.evidence["drink_at"] == "2026-11-24T15:05:00+01:00"
    assert questions[0].title == "Alex: Whose espresso?"
    assert questions[1].title == "Sam: Whose espresso?"
    assert caffeine_of(replay, "alex") == caffeine_of(replay, "sam") == 0
    assert not any(n.rule.startswith("caffeine.") for n in replay.nudges)
    assert [q["id"] for q in last_state(replay, "sam")["open_questions"]] == [questions[1].id]
    assert last_state(replay, "sam")["open_questions"][0]["caffeine_mg"] == 126.0


def test_claimed_by_sam_moves_only_sam_and_only_sam_gets_the_cutoff_with_the_brew_time() -> None:
    replay = started()
    replay.feed([brew("15:05"), mine("sam", "15:12")])
    assert caffeine_of(replay, "sam") == pytest.approx(126.0)
    assert caffeine_of(replay, "alex") == 0
    assert replay.state.person("sam").doses[0][0] == t("15:05").timestamp()
    cutoff = replay.nudge(f"caffeine.cutoff:sam:{DAY}:1505")
    assert cutoff.title == "Sam: No caffeine now"
    assert cutoff.ts == t("15:12")
    assert cutoff.evidence["drink_at"] == "2026-11-24T15:05:00+01:00"
    assert not [n for n in replay.nudges if n.person == "alex" and n.rule != "household.whose"]
    withdrawn = [a for a in replay.actions if isinstance(a, WithdrawNudge)]
    assert withdrawn == [WithdrawNudge(f"household.whose:alex:{DAY}:1505", "alex")]
    (recorded,) = [a.drink for a in replay.actions if isinstance(a, RecordDrink)]
    assert (recorded.person, recorded.ts, recorded.source) == ("sam", t("15:05"), "kitchen")
    assert (recorded.drink, recorded.caffeine_mg) == ("espresso", 126.0)
    assert last_state(replay, "alex")["open_questions"] == []
    assert last_state(replay, "sam")["open_questions"] == []
    assert last_state(replay, "sam")["caffeine_mg_today"] == 126.0
    assert last_state(replay, "alex")["caffeine_mg_today"] == 0.0
    assert last_state(replay, "sam")["caffeine_mg_at_bedtime"] == pytest.approx(40.6, abs=0.1)
    assert last_state(replay, "alex")["caffeine_mg_at_bedtime"] == 0.0


def test_unanswered_the_drink_counts_for_nobody_and_the_questions_are_withdrawn() -> None:
    replay = started()
    replay.feed([brew("15:05")], until=t("15:36"))
    assert {a.nudge_id for a in replay.actions if isinstance(a, WithdrawNudge)} == {
        f"household.whose:alex:{DAY}:1505",
        f"household.whose:sam:{DAY}:1505",
    }
    (drink,) = replay.state.shared_drinks.values()
    assert drink.outcome == "unattributed"
    assert not [n for n in replay.nudges if n.rule.startswith("caffeine.")]
    replay.decide(mine("sam", "15:40"))
    assert "expired at 15:35" in replay.refused[-1]
    replay.advance(t("23:59"))
    assert caffeine_of(replay, "alex") == caffeine_of(replay, "sam") == 0
    assert not [n for n in replay.nudges if n.rule.startswith("caffeine.")]


def test_the_answer_window_is_configurable() -> None:
    replay = started(household({"household.whose": {"answer_within_min": 5}}))
    replay.feed([brew("15:05")], until=t("15:11"))
    replay.decide(mine("sam", "15:11"))
    assert "expired at 15:10" in replay.refused[-1]


def test_the_first_answer_wins() -> None:
    replay = started()
    replay.feed([brew("15:05"), mine("alex", "15:07"), mine("sam", "15:08")])
    assert caffeine_of(replay, "alex") == pytest.approx(126.0)
    assert caffeine_of(replay, "sam") == 0
    assert "already claimed by alex" in replay.refused[-1]
    assert f"caffeine.cutoff:alex:{DAY}:1505" in replay.ids
    assert not [n for n in replay.nudges if n.person == "sam" and n.rule.startswith("caffeine.")]


def test_mine_without_an_id_takes_the_most_recent_open_question() -> None:
    replay = started()
    replay.feed([brew("08:00", "coffee", 240.0), brew("08:10"), mine("sam", "08:12")])
    (claimed,) = [d for d in replay.state.shared_drinks.values() if d.outcome == "claimed"]
    assert claimed.drink == "espresso"
    assert claimed.claimed_by == "sam"
    replay.decide(mine("sam", "08:13", f"household.whose:sam:{DAY}:0800"))
    assert caffeine_of(replay, "sam") == pytest.approx(126.0 + 95.0)


@pytest.mark.parametrize(
    ("events", "refusal"),
    [
        pytest.param([mine("sam", "15:00")], "sam has no open question", id="no open question"),
        pytest.param(
            [brew("15:05"), mine("sam", "15:06", "household.whose:sam:2026-11-24:9999")],
            "no question about a shared drink with id",
            id="unknown id",
        ),
        pytest.param(
            [brew("15:05"), mine("kim", "15:06", f"household.whose:sam:{DAY}:1505")],
            "kim is not listed on device 'kitchen' (alex, sam)",
            id="a person not listed on that device",
        ),
        pytest.param(
            [brew("15:05"), mine("nobody", "15:06")],
            "unknown person 'nobody'",
            id="a person not in the config",
        ),
    ],
)
def test_bad_answers_are_refused_and_change_nothing(events: list[Any], refusal: str) -> None:
    replay = started()
    replay.feed(events[:-1])
    before = _without_clock(replay)
    nudges = len(replay.nudges)
    actions = replay.decide(events[-1])
    assert refusal in replay.refused[-1]
    assert len(replay.nudges) == nudges
    assert not [a for a in actions if isinstance(a, WithdrawNudge)]
    assert _without_clock(replay) == before


def _without_clock(replay: Replay) -> dict[str, Any]:
    doc = json.loads(dump_state(replay.state))
    del doc["clock"]
    return doc


def test_an_open_question_survives_a_restart_and_its_expiry_is_rearmed() -> None:
    replay = started()
    replay.feed([brew("15:05")])
    restored = Replay(config=household(), state=load_state(dump_state(replay.state)))
    restored.start(t("15:20"))
    assert any(tm.kind == "household.whose" for tm in restored.timers.pending.values())
    restored.feed([mine("sam", "15:25")])
    assert caffeine_of(restored, "sam") == pytest.approx(126.0)
    assert f"caffeine.cutoff:sam:{DAY}:1505" in restored.ids


def test_a_decaf_or_a_switched_off_rule_asks_nobody() -> None:
    replay = started()
    replay.feed([brew("15:05", "decaf", 240.0)])
    assert not [n for n in replay.nudges if n.rule == "household.whose"]
    replay = started(household({"household.whose": {"enabled": False}}))
    replay.feed([brew("15:05")])
    assert not [n for n in replay.nudges if n.rule == "household.whose"]
    (drink,) = replay.state.shared_drinks.values()
    assert drink.outcome == "unattributed"


def test_someone_in_their_quiet_hours_is_not_asked() -> None:
    replay = started()
    replay.feed([brew("22:50")])  # alex's quiet hours began at 22:45; sam is up until 23:15
    assert [n.person for n in replay.nudges if n.rule == "household.whose"] == ["sam"]
    replay.decide(mine("alex", "22:52"))
    assert "not asked" in replay.refused[-1]


def test_closed_drinks_are_forgotten_after_two_days() -> None:
    replay = started()
    replay.feed([brew("15:05"), mine("sam", "15:10")])
    replay.advance(t("15:10") + timedelta(days=3))
    assert replay.state.shared_drinks == {}


def test_one_person_keeps_titles_as_they_are() -> None:
    config = Config.model_validate(
        {"timezone": "Europe/Berlin", "people": PEOPLE[:1], "devices": []}
    )
    replay = Replay(config=config)
    replay.start(t("07:00"))
    replay.advance(t("23:00"))
    assert replay.nudges
    assert all(not n.title.startswith("Alex:") for n in replay.nudges)


def test_a_list_on_a_bed_sensor_or_a_tracker_is_refused() -> None:
    for kind in ("bed_motion", "fitness_tracker"):
        with pytest.raises(ValueError, match=f"a {kind} measures one person"):
            Config.model_validate(
                {
                    "timezone": "Europe/Berlin",
                    "people": PEOPLE,
                    "devices": [{"id": "d", "kind": kind, "topic": "x", "person": ["alex", "sam"]}],
                }
            )


def test_a_person_without_devices_gets_no_nudge_that_needs_one() -> None:
    """Two weeks with no device at all: nothing about caffeine, exercise, stress, daylight or
    nights; only the wind-down and the morning check-in, which need nothing but the schedule."""
    config = Config.model_validate(
        {"timezone": "Europe/Berlin", "people": PEOPLE[:2], "devices": []}
    )
    replay = Replay(config=config)
    replay.start(t("07:00"))
    replay.advance(t("07:00") + timedelta(days=15))
    assert {n.rule for n in replay.nudges} == {"winddown.stretch", "checkin.morning"}
    assert not replay.dropped
