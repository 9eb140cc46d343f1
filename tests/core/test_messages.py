"""Every message the coach can send, in one voice.

- `MESSAGES` produces each kind of message at least once (every title, every variant of a text)
  through `decide()`, and the advice rules' texts are pinned word for word: each was read by hand.
- Every message, the nights' included, keeps the house style (`VOICE`): counts with the right
  singular or plural, durations and clock times as people say them, no ratios or stray decimals,
  a caffeine amount always "of caffeine".
- The templates are enumerated from the source: every title and every piece of message text in
  the rule modules must be produced here, and its words pinned by some test; every function of
  `coach.wording` is tested. A new template without a test fails.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from pathlib import Path

import pytest

from coach import wording
from coach.config import NOT_RULES, Config, Rules
from coach.event import Event
from coach.nudge import Nudge
from tests.core.conftest import (
    coffee,
    every_minute,
    heart_rate,
    in_bed,
    logged,
    make_config,
    run,
    run_day,
    stress,
    sunlight,
    t,
    workout,
    workout_end,
)
from tests.core.test_household import brew, household
from tests.core.test_night import (
    ALL_YES,
    PATTERN,
    TWITCHY,
    a_night,
    checkin,
    day,
    move,
    nights,
    replay_nights,
    with_logs,
)

REPO = Path(__file__).resolve().parents[2]
MON = "2026-11-23"
#: The bedtime load as a nudge of its own (not inside the wind-down) with room for it.
LOAD_ALONE = make_config(rules={"nudge_budget": {"merge_within_min": 0, "routine_per_evening": 3}})


def _day(events: list[Event], config: Config | None = None, hours: float = 17) -> list[Nudge]:
    return run_day(events, **({"config": config} if config else {}), hours=hours).nudges


def _worn(days: int) -> list[Event]:
    return [heart_rate("08:00", 64, day=day(MON, i)) for i in range(days)]


def _encouragement() -> list[Nudge]:
    start = t("07:00", MON)
    events = sorted(
        [workout("18:00", "moderate", day=MON), workout_end("18:45", day=MON), *_worn(5)],
        key=lambda e: e.ts,
    )
    return run(events, start=start, until=start + timedelta(days=5)).nudges


def _insight() -> list[Nudge]:
    events: list[Event] = []
    for i in range(15):
        evening = day("2026-11-07", i)
        if i % 3 == 0:
            events += [workout("21:00", "vigorous", day=evening), workout_end("21:40", day=evening)]
        events += a_night(evening, lms=150 if i % 3 == 0 else 20 + 5 * (i % 4))
    start = t("07:00", "2026-11-07")
    return run(events, start=start, until=t("12:00", "2026-11-22")).nudges


def _with_checkins(answers: list[Event]) -> list[Nudge]:
    events = sorted([*nights("2026-11-24", 3, overrides=PATTERN), *answers], key=lambda e: e.ts)
    return run(events, start=t("07:00", "2026-11-24"), until=t("12:00", "2026-11-27")).nudges


def _held(first: str, last: str, bpm: float) -> list[Event]:
    return every_minute(first, last, lambda hhmm, day: heart_rate(hhmm, bpm, day=day))


#: Each case: how to produce it, and the rule and title of the nudge it is about (the first of
#: them in the replay, if it sends several).
MESSAGES: dict[str, tuple[Callable[[], list[Nudge]], str, str]] = {
    "last call": (
        lambda: _day([coffee("08:00", "coffee", ml=240)]),
        "caffeine.last_call",
        "Caffeine cutoff at 13:30",
    ),
    "cutoff before bed": (
        lambda: _day([coffee("16:05", "espresso", mg=126)]),
        "caffeine.cutoff",
        "No caffeine now",
    ),
    "cutoff, a logged drink of 40 mg": (
        lambda: _day([logged("16:30", "caffeine", mg=40)]),
        "caffeine.cutoff",
        "No caffeine now",
    ),
    "cutoff after earlier drinks": (
        lambda: _day([coffee("09:00", "coffee", ml=240), logged("16:30", "caffeine", mg=40)]),
        "caffeine.cutoff",
        "No caffeine now",
    ),
    "cutoff after bed": (
        lambda: _day([coffee("23:10", "cold_brew", ml=240)]),
        "caffeine.cutoff",
        "No caffeine now",
    ),
    "daily limit": (
        lambda: _day([logged("08:00", "caffeine", mg=250), logged("10:00", "caffeine", mg=200)]),
        "caffeine.daily_limit",
        "That's a lot of caffeine today",
    ),
    "bedtime load alone": (
        lambda: _day([logged("12:30", "caffeine", mg=240)], LOAD_ALONE),
        "caffeine.bedtime_load",
        "Caffeine still high at bedtime",
    ),
    "wind-down": (lambda: _day([]), "winddown.stretch", "Time to wind down"),
    "wind-down with the bedtime load": (
        lambda: _day([logged("12:30", "caffeine", mg=240)]),
        "winddown.stretch",
        "Time to wind down",
    ),
    "wind-down after a late workout": (
        lambda: _day([workout("19:40", "vigorous"), workout_end("20:30")]),
        "winddown.stretch",
        "Time to wind down",
    ),
    "nicotine": (
        lambda: _day([logged("20:00", "nicotine")]),
        "stimulant.late",
        "Nicotine this late keeps you wired",
    ),
    "alcohol": (
        lambda: _day([logged("20:15", "alcohol")]),
        "alcohol.late",
        "Alcohol close to bedtime",
    ),
    "exercise tip": (
        lambda: _day([workout("20:00", "vigorous"), workout_end("20:45")]),
        "exercise.late_intense",
        "Keep the last hour light",
    ),
    "exercise alert, started in the last hour": (
        lambda: _day([workout("21:45", "vigorous"), workout_end("22:15")]),
        "exercise.late_intense",
        "Switch to stretching",
    ),
    "exercise alert, still going": (
        lambda: [
            n
            for n in _day([workout("20:50", "vigorous"), workout_end("21:50")])
            if n.severity == "alert"
        ],
        "exercise.late_intense",
        "Switch to stretching",
    ),
    "exercise tip, a heart rate held high": (
        lambda: _day(_held("20:00", "20:12", 150)),
        "exercise.late_intense",
        "Keep the last hour light",
    ),
    "exercise alert, a heart rate held high": (
        lambda: _day(_held("21:35", "21:47", 150)),
        "exercise.late_intense",
        "Switch to stretching",
    ),
    "stress": (
        lambda: _day(every_minute("20:00", "20:20", lambda hhmm, day: stress(hhmm, 90, day=day))),
        "stress.relax",
        "Make time to relax",
    ),
    "daylight, none": (
        lambda: _day([sunlight("12:00", 0)]),
        "sunlight.daily",
        "Get some daylight",
    ),
    "daylight, under a minute": (
        lambda: _day([sunlight("12:00", 0.5)]),
        "sunlight.daily",
        "Get some daylight",
    ),
    "daylight, 1 minute": (
        lambda: _day([sunlight("12:00", 1)]),
        "sunlight.daily",
        "Get some daylight",
    ),
    "daylight, 14.9 minutes": (
        lambda: _day([sunlight("12:00", 14.9)]),
        "sunlight.daily",
        "Get some daylight",
    ),
    "encouragement": (_encouragement, "encouragement.exercise", "Time to move?"),
    # The nights: their texts are pinned in test_night; here they keep the voice.
    "night summary, a hypnic jerk": (
        lambda: replay_nights(a_night("2026-11-24", jerk=True), 1).nudges,
        "twitch.night_summary",
        "Last night",
    ),
    "night summary, a high index": (
        lambda: replay_nights(a_night("2026-11-24", lms=150), 1).nudges,
        "twitch.night_summary",
        "Last night",
    ),
    "night summary, settled at once": (
        lambda: replay_nights(a_night("2026-11-24", lms=150, enter="22:34"), 1).nudges,
        "twitch.night_summary",
        "Last night",
    ),
    "night summary, never settled": (
        lambda: (
            replay_nights(
                [
                    in_bed("22:30"),
                    *(move(t("22:32") + timedelta(minutes=3 * i)) for i in range(160)),
                    in_bed("06:40", occupied=False, day="2026-11-25"),
                ],
                1,
            ).nudges
        ),
        "twitch.night_summary",
        "Last night",
    ),
    "frequent": (
        lambda: replay_nights(nights("2026-11-24", 3, overrides=PATTERN), 3).nudges,
        "twitch.frequent",
        "Leg movements on several nights",
    ),
    "frequent, restless legs": (
        lambda: _with_checkins([checkin("2026-11-25", rls=ALL_YES)]),
        "twitch.frequent",
        "Leg movements worth having checked",
    ),
    "frequent, unrested mornings": (
        lambda: _with_checkins(
            [checkin(d, rested=2) for d in ("2026-11-24", "2026-11-25", "2026-11-26")]
        ),
        "twitch.frequent",
        "Leg movements worth having checked",
    ),
    "daytime twitching": (
        lambda: (
            replay_nights(
                with_logs(
                    nights("2026-11-24", 2, overrides={0: TWITCHY}), "2026-11-25", "2026-11-26"
                ),
                3,
            ).nudges
        ),
        "twitch.daytime",
        "Twitching while awake",
    ),
    "check-in": (
        lambda: _day([], hours=24),
        "checkin.morning",
        "Morning check-in",
    ),
    "check-in with the restless-legs questions": (
        lambda: [
            n
            for n in replay_nights(nights("2026-11-24", 4, overrides=PATTERN), 4).nudges
            if n.id == "checkin.morning:alex:2026-11-27"
        ],
        "checkin.morning",
        "Morning check-in",
    ),
    "insight": (_insight, "insight.correlation", "What goes with your restless nights"),
    "whose drink": (
        lambda: run([brew("15:05")], config=household(), start=t("07:00"), until=t("15:10")).nudges,
        "household.whose",
        "Alex: Whose espresso?",  # a household of several: each title names its person
    ),
}

#: The advice rules' and the check-in's messages, word for word.
PINNED = {
    "last call": (
        "Caffeine after 13:30 will still be in your body at bedtime (22:30) and can shorten your "
        "sleep. Consider caffeine-free drinks from then on."
    ),
    "cutoff before bed": (
        "That espresso (126 mg of caffeine) came about 6 hours 30 minutes before your bedtime "
        "(22:30); about 52 mg will still be in your body then, which can make it harder to fall "
        "asleep and shorten your sleep. Consider caffeine-free drinks for the rest of the day."
    ),
    "cutoff, a logged drink of 40 mg": (
        "That caffeinated drink (40 mg of caffeine) came 6 hours before your bedtime (22:30); "
        "about 17 mg will still be in your body then, which can make it harder to fall asleep "
        "and shorten your sleep. Consider caffeine-free drinks for the rest of the day."
    ),
    "cutoff after earlier drinks": (
        "That caffeinated drink (40 mg of caffeine) came 6 hours before your bedtime (22:30); "
        "with your earlier drinks, about 32 mg will still be in your body then, which can make "
        "it harder to fall asleep and shorten your sleep. Consider caffeine-free drinks for the "
        "rest of the day."
    ),
    "cutoff after bed": (
        "That cold brew (155 mg of caffeine) came after your bedtime (22:30). Caffeine takes "
        "hours to wear off and can make it harder to get back to sleep; consider caffeine-free "
        "drinks for the rest of the night."
    ),
    "daily limit": (
        "You've had about 450 mg of caffeine today, more than the 400 mg a day considered safe "
        "for healthy adults. Consider switching to water or caffeine-free drinks for the rest "
        "of the day."
    ),
    "bedtime load alone": (
        "About 60 mg of caffeine will still be in your body at bedtime (22:30). Consider a "
        "calm, screen-free wind-down; if this happens often, an earlier last coffee may help you "
        "fall asleep."
    ),
    "wind-down": (
        "Bedtime is at 22:30. Consider dimming the lights, putting screens away and doing a few "
        "minutes of light stretching to relax."
    ),
    "wind-down with the bedtime load": (
        "Bedtime is at 22:30, and about 60 mg of caffeine will still be in your body then, "
        "which can make it harder to fall asleep. Consider dimming the lights, putting screens "
        "away and doing a few minutes of light stretching to relax."
    ),
    "wind-down after a late workout": (
        "Bedtime is at 22:30. Consider dimming the lights, putting screens away and doing a few "
        "minutes of light stretching to relax. After today's late workout, slow stretches for "
        "the legs, hips and back, held 20–30 seconds each with calm breathing, help your body "
        "settle."
    ),
    "nicotine": (
        "Nicotine is a stimulant, and this was 2 hours 30 minutes before your bedtime (22:30). "
        "Consider keeping the last 4 hours before bed nicotine-free; if you'd like help "
        "quitting, talk to your doctor."
    ),
    "alcohol": (
        "You logged a drink 2 hours 15 minutes before your bedtime (22:30). Alcohol can help "
        "you fall asleep but tends to disturb the second half of the night. Consider water or "
        "alcohol-free drinks from now on."
    ),
    "exercise tip": (
        "This vigorous workout started 2 hours 30 minutes before your bedtime (22:30). Evening "
        "exercise generally doesn't harm sleep; only hard exercise that ends within an hour of "
        "bedtime can make it harder to fall asleep. Consider finishing by 21:30 and keeping the "
        "last hour for light stretching."
    ),
    "exercise alert, started in the last hour": (
        "Your vigorous workout started 45 minutes before your bedtime (22:30). Hard exercise "
        "this close to bed can make it harder to fall asleep; consider switching to light "
        "stretching now."
    ),
    "exercise alert, still going": (
        "Your vigorous workout is still going 1 hour before your bedtime (22:30). Hard exercise "
        "this close to bed can make it harder to fall asleep; consider switching to light "
        "stretching now."
    ),
    "exercise tip, a heart rate held high": (
        "Your heart rate has been at a hard-exercise level (139 bpm or more) for 10 minutes, "
        "about 2 hours 15 minutes before your bedtime (22:30). Evening exercise generally "
        "doesn't harm sleep; only hard exercise that ends within an hour of bedtime can make it "
        "harder to fall asleep. Consider finishing by 21:30 and keeping the last hour for light "
        "stretching."
    ),
    "exercise alert, a heart rate held high": (
        "Your heart rate has been at a hard-exercise level (139 bpm or more) for 10 minutes, "
        "45 minutes before your bedtime (22:30). Hard exercise this close to bed can make it "
        "harder to fall asleep; consider switching to light stretching now."
    ),
    "stress": (
        "Your stress level has been high for a while this evening. Consider a short walk, slow "
        "breathing, or time with someone close: stress and anxiety make twitches as you fall "
        "asleep more likely."
    ),
    "daylight, none": (
        "Your tracker has counted no daylight today. Consider stepping outside for at least "
        "15 minutes before the evening: daylight helps your body clock and lowers stress."
    ),
    "daylight, under a minute": (
        "Your tracker has counted less than a minute of daylight today. Consider stepping "
        "outside for at least 15 minutes before the evening: daylight helps your body clock and "
        "lowers stress."
    ),
    "daylight, 1 minute": (
        "Your tracker has counted 1 minute of daylight today. Consider stepping outside for at "
        "least 15 minutes before the evening: daylight helps your body clock and lowers stress."
    ),
    "daylight, 14.9 minutes": (
        "Your tracker has counted 14 minutes of daylight today. Consider stepping outside for "
        "at least 15 minutes before the evening: daylight helps your body clock and lowers "
        "stress."
    ),
    "check-in": (
        "How rested do you feel this morning, from 1 (not at all) to 5 (fully rested)? And did "
        "you have muscle twitching while awake yesterday? Your answers stay at home and help the "
        "coach read your nights."
    ),
    "check-in with the restless-legs questions": (
        "How rested do you feel this morning, from 1 (not at all) to 5 (fully rested)? And did "
        "you have muscle twitching while awake yesterday? About your legs, yes or no: Do you "
        "have an urge to move your legs, usually with unpleasant feelings in them? Does it start "
        "or get worse while you rest, sitting or lying down? Does moving, walking or stretching "
        "ease it, at least while you move? Is it worse in the evening or at night than during "
        "the day? Your answers stay at home and help the coach read your nights."
    ),
    "encouragement": (
        "Your tracker hasn't recorded a workout for 4 days. If you can, consider some activity "
        "today, even a brisk walk: regular exercise tends to help sleep."
    ),
    "whose drink": (
        "The shared coffee maker made an espresso at 15:05 (about 126 mg of caffeine). Was it "
        'yours? Answer "Mine" so your caffeine and your cutoff count it; unanswered by 15:35, it '
        "counts for nobody."
    ),
}


@cache
def produced(case: str) -> Nudge:
    """The nudge a case is about."""
    make, rule, title = MESSAGES[case]
    found = [n for n in make() if n.rule == rule and n.title == title]
    assert found, f"{case}: no {rule} nudge titled {title!r}"
    return found[0]


@pytest.mark.parametrize("case", sorted(PINNED))
def test_the_advice_messages_word_for_word(case: str) -> None:
    assert produced(case).message == PINNED[case]


#: The house style, as (what is wrong, a pattern that finds it).
VOICE: list[tuple[str, re.Pattern[str]]] = [
    (
        "a plural after 1",
        re.compile(
            r"(?<![\d.])1 (minutes|hours|days|nights|weeks|twitches|limb movements|"
            r"posture changes|hypnic jerks|drinks|times)\b"
        ),
    ),
    (
        "a singular after a number other than 1",
        re.compile(
            r"(?<![\d.])(0|[2-9]|\d\d+) (minute|hour|day|night|week|twitch|limb movement|"
            r"posture change|hypnic jerk|drink|time)\b(?!-)"
        ),
    ),
    (
        "a plural noun with a singular verb",
        re.compile(r"\b(jerks|movements|twitches|nights) was\b"),
    ),
    ("a ratio", re.compile(r"\d\s*×|\d+(\.\d+)?x\b")),
    ("hours as a decimal", re.compile(r"\d\.\d+ ?(h|hours?)\b")),
    ("more than one decimal", re.compile(r"\d\.\d{2,}")),
    ("minutes as a decimal", re.compile(r"\d\.\d+ ?(min|minutes?)\b")),
    ("an amount of caffeine without its name", re.compile(r"\(\d+ mg\)")),
    ("caffeine named as a drink", re.compile(r"\bThat caffeine\b")),
    ("a blank before a stop", re.compile(r" [.,;:]")),
    ("a doubled blank or stop", re.compile(r"  |\.\.")),
    ("a clock time not HH:MM", re.compile(r"\b\d:\d\d\b|\b\d{1,2}h\d{2}\b")),
]


@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_every_message_keeps_the_voice(case: str) -> None:
    message = produced(case).message
    for wrong, pattern in VOICE:
        found = pattern.search(message)
        assert found is None, f"{case}: {wrong}: {found.group(0)!r} in {message!r}"
    assert message[0].isupper(), message
    assert message.endswith("."), message
    # Advice considers, findings are screening, a check-in asks.
    assert re.search(r"\b(consider|screening)\b|\?", message, re.IGNORECASE), message


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("your hypnic jerks was about 2.0× as many", "a plural noun with a singular verb"),
        ("your hypnic jerks were about 2.0× as many", "a ratio"),
        ("That caffeine (130 mg) came late", "an amount of caffeine without its name"),
        ("in bed 7.8 h", "hours as a decimal"),
        ("1 nights above", "a plural after 1"),
        ("for 3 minute", "a singular after a number other than 1"),
        ("at 9:30", "a clock time not HH:MM"),
    ],
)
def test_the_voice_finds_the_old_defects(text: str, wrong: str) -> None:
    """Each rule of the voice catches what it is for (a check that cannot fail proves nothing)."""
    assert any(name == wrong and p.search(text) for name, p in VOICE), text


# -- the templates, from the source ---------------------------------------------------------------

#: Names a rule builds a message in.
_MESSAGE_NAMES = {"message", "opening", "advice", "that", "when", "parts", "text", "line"}
#: Rule modules (the others hold no message text).
_RULE_MODULES = sorted(
    p
    for p in (REPO / "coach").glob("*.py")
    if p.stem not in {"__init__", "wording", "dashboard", "config", "limb_movement", "clock"}
)


def _strings(node: ast.AST) -> list[str]:
    """The literal text pieces of string nodes under `node` (an f-string's constant parts)."""
    out: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.JoinedStr):
            out += [v.value for v in sub.values if isinstance(v, ast.Constant)]
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            out.append(sub.value)
    return out


def _message_pieces(tree: ast.AST) -> set[str]:
    """Every literal piece of message text: assigned to a message name, passed as `message=`
    or appended to `parts`; only pieces long enough to be words, not joints."""
    pieces: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            if names & _MESSAGE_NAMES and node.value is not None:
                pieces += _strings(node.value)
        elif isinstance(node, ast.keyword) and node.arg == "message":
            pieces += _strings(node.value)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"append", "extend"}
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in _MESSAGE_NAMES
        ):
            for arg in node.args:
                pieces += _strings(arg)
    return {p.strip() for p in pieces if len(p.strip()) >= 16}


def _titles(tree: ast.AST) -> set[str]:
    """Every title literal (an f-string's text before its first field)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        value: ast.AST | None = None
        if isinstance(node, ast.keyword) and node.arg == "title":
            value = node.value
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple):
            names = [getattr(e, "id", None) for e in node.targets[0].elts]
            if "title" in names and isinstance(node.value, ast.Tuple):
                value = node.value.elts[names.index("title")]
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            out.add(value.value)
        elif isinstance(value, ast.JoinedStr) and isinstance(value.values[0], ast.Constant):
            out.add(str(value.values[0].value))
    return out


def _source_trees() -> dict[str, ast.AST]:
    return {p.name: ast.parse(p.read_text(encoding="utf-8")) for p in _RULE_MODULES}


def test_the_templates_are_found_in_the_source() -> None:
    """The enumeration below sees the rule modules' texts (else it would check nothing)."""
    trees = _source_trees()
    titles = set().union(*map(_titles, trees.values()))
    assert {"No caffeine now", "Caffeine cutoff at ", "Switch to stretching"} <= titles
    pieces = set().union(*map(_message_pieces, trees.values()))
    assert "will still be in your body at bedtime" in " ".join(pieces)
    assert len(pieces) > 30


def test_every_title_is_produced() -> None:
    titles = set().union(*map(_titles, _source_trees().values()))
    made = {produced(case).title for case in MESSAGES}
    # In a household of several people a title starts with the person's name ("Sam: ...").
    missing = {
        title for title in titles if not any(m.startswith(title) or f": {title}" in m for m in made)
    }
    assert missing == set(), f"no case in MESSAGES produces these titles: {missing}"


def test_every_rule_is_produced() -> None:
    rules = {f.alias for name, f in Rules.model_fields.items() if name not in NOT_RULES}
    made = {rule for _, rule, _ in MESSAGES.values()}
    assert rules - made == set()


@cache
def _test_texts() -> str:
    """Every string constant of the tests (adjacent literals joined, as Python joins them) and
    every pinned scenario output: where a template's words must be found."""
    texts: list[str] = []
    for path in (REPO / "tests").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        texts += [
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]
    for path in (REPO / "tests" / "scenarios").glob("*.expected.jsonl"):
        texts.append(path.read_text(encoding="utf-8"))
    return "\n".join(texts)


@pytest.mark.parametrize("module", [p.name for p in _RULE_MODULES])
def test_every_piece_of_message_text_is_produced_and_pinned(module: str) -> None:
    """Every literal piece of a message in the rule modules comes out of some case here and is
    pinned by some test; so a new sentence, or a new branch of a message, needs both."""
    pieces = _message_pieces(_source_trees()[module])
    made = "\n".join(produced(case).message for case in MESSAGES)
    not_made = sorted(p for p in pieces if p not in made)
    assert not_made == [], f"no case in MESSAGES produces: {not_made}"
    pinned = _test_texts()
    not_pinned = sorted(p for p in pieces if p not in pinned)
    assert not_pinned == [], f"no test pins: {not_pinned}"


def test_every_wording_function_is_tested() -> None:
    """`coach.wording` is how every message says numbers: each of its functions has a table in
    test_wording."""
    public = {
        name
        for name, fn in inspect.getmembers(wording, inspect.isfunction)
        if fn.__module__ == wording.__name__ and not name.startswith("_")
    }
    tested = (REPO / "tests" / "core" / "test_wording.py").read_text(encoding="utf-8")
    untested = {name for name in public if f"{name}(" not in tested}
    assert untested == set()
