"""The core's configuration: the time zone, people, devices and every rule's numbers.

This is the coaching part of the configuration file; the broker, storage and Home Assistant
settings (and their secrets) are the shell's, modelled beside it in `integrations.settings`, so
`decide()` never receives a password or a token. Every field carries a description, so
`sleepcoach schema` documents the file. Rule defaults are the evidence-based ones; each cites its
source next to the number.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time
from functools import cached_property
from types import MappingProxyType
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from coach.decode.topic import filter_problem

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(value: Any) -> time:
    """Parse a local wall-clock time written as "HH:MM" (YAML may also hand over minutes as int)."""
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 22:30 as the sexagesimal integer 1350.
        return time(value // 60, value % 60)
    if isinstance(value, str):
        match = _HHMM.match(value.strip())
        if match:
            return time(int(match.group(1)), int(match.group(2)))
    msg = f'expected a time as "HH:MM" (00:00 to 23:59), got {value!r}'
    raise ValueError(msg)


#: What a config file writes for a local time, for `sleepcoach schema` (a `time` alone would be
#: JSON Schema's "format: time", an RFC 3339 time with seconds and an offset).
HHMM_JSON_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": _HHMM.pattern,
    "description": 'A local wall-clock time, "HH:MM".',
    "examples": ["22:30"],
}

LocalTime = Annotated[time, BeforeValidator(parse_hhmm), WithJsonSchema(HHMM_JSON_SCHEMA)]


class Model(BaseModel):
    """Base for configuration models: unknown keys are errors and a loaded config never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy, with what was derived from the fields (`cached_property`) derived afresh."""
        copy = super().model_copy(update=update, deep=deep)
        for name in _derived(type(self)):
            copy.__dict__.pop(name, None)
        return copy


def _derived(cls: type) -> list[str]:
    """The names of a class's cached properties (their values live in the instance's dict)."""
    return [
        name
        for klass in cls.__mro__
        for name, value in vars(klass).items()
        if isinstance(value, cached_property)
    ]


class WeeklyTime(Model):
    """A local time per weekday; a missing day falls back to `default`."""

    default: LocalTime | None = Field(None, description="Time for days not listed.")
    mon: LocalTime | None = Field(None, description="Monday.")
    tue: LocalTime | None = Field(None, description="Tuesday.")
    wed: LocalTime | None = Field(None, description="Wednesday.")
    thu: LocalTime | None = Field(None, description="Thursday.")
    fri: LocalTime | None = Field(None, description="Friday.")
    sat: LocalTime | None = Field(None, description="Saturday.")
    sun: LocalTime | None = Field(None, description="Sunday.")

    @model_validator(mode="after")
    def _every_day_known(self) -> WeeklyTime:
        if self.default is None and any(getattr(self, d) is None for d in WEEKDAYS):
            missing = [d for d in WEEKDAYS if getattr(self, d) is None]
            msg = f"no time for {', '.join(missing)}: list every weekday or give a default"
            raise ValueError(msg)
        return self

    def on(self, weekday: int) -> time:
        """The time for a weekday (0 = Monday)."""
        value = getattr(self, WEEKDAYS[weekday])
        if value is None:
            assert self.default is not None  # checked by the validator
            return self.default
        return value  # type: ignore[no-any-return]


def _weekly(value: Any) -> Any:
    if isinstance(value, dict):
        return value
    if value is None:
        msg = 'expected a time as "HH:MM", or one per weekday'
        raise ValueError(msg)
    return {"default": value}


@dataclass(frozen=True)
class _OneTimeOrWeekly:
    """The JSON Schema of a schedule: one "HH:MM" for every day, or a `WeeklyTime`."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"anyOf": [HHMM_JSON_SCHEMA, handler(schema)]}


Schedule = Annotated[WeeklyTime, BeforeValidator(_weekly), _OneTimeOrWeekly()]


class Person(Model):
    """Someone the coach looks after."""

    id: str = Field(
        description="Short id used in topics and nudges (letters, digits, _ and -).",
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
    )
    name: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Display name (defaults to the id, capitalised). With more than one person in "
        'the config every nudge title starts with it: "Sam: No caffeine now".',
    )
    notify: list[str] = Field(
        default_factory=list,
        description="Home Assistant notify services for this person's nudges "
        "(notify.mobile_app_sams_phone); empty: homeassistant.notify.",
    )
    bedtime: Schedule = Field(
        description='Usual bedtime, "22:30", or per weekday {mon: "22:30", ..., sat: "23:30"}. '
        'A time after midnight ("00:45") belongs to the evening before.'
    )
    wake: Schedule = Field(
        description='Usual wake time, "06:30", or per weekday (the weekday of the morning).'
    )
    age: int | None = Field(None, ge=10, le=120, description="Age in years, for 220 − age max HR.")
    max_hr: int | None = Field(
        None, ge=100, le=230, description="Measured maximum heart rate; overrides 220 − age."
    )
    caffeine_half_life_h: float = Field(
        5.0,
        ge=2.0,
        le=10.0,
        description="Caffeine half-life in hours. Mean about 5 h in healthy adults, range 2–10 h "
        "(IOM 2001; Gardiner et al. 2023, Sleep Med Rev 69:101764).",
    )

    morning_checkin: bool = Field(
        True,
        description="Whether the coach asks the morning check-in (how rested you feel, "
        "twitching while awake) after your wake time; false turns it off for this person.",
    )

    @property
    def display_name(self) -> str:
        """The name shown in titles and Home Assistant."""
        return self.name or self.id.capitalize()


DeviceKind = Literal["bed_motion", "coffee_maker", "fitness_tracker"]


class Device(Model):
    """A sensor that publishes on MQTT, and whose person it measures."""

    id: str = Field(description="Short id of the device.", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    kind: DeviceKind = Field(
        description="What it measures: bed_motion, coffee_maker, fitness_tracker."
    )
    topic: str = Field(min_length=1, description="MQTT topic (filter) the device publishes on.")
    person: str | list[str] = Field(
        description="Id of the person this device measures; a coffee maker several people use "
        "takes a list ([alex, sam]): each brew asks them whose drink it was."
    )
    profile: str = Field(
        "native", description="Payload format: native (the contract's JSON) or a device profile."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Profile-specific settings (see the device profiles docs).",
    )

    @field_validator("topic")
    @classmethod
    def _topic_valid(cls, v: str) -> str:
        problem = filter_problem(v)
        if problem is not None:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _shared_only_coffee(self) -> Device:
        if isinstance(self.person, list):
            if not self.person:
                msg = "person: give at least one person id"
                raise ValueError(msg)
            if len(set(self.person)) != len(self.person):
                msg = f"person: {self.person} names someone twice"
                raise ValueError(msg)
            if len(self.person) > 1 and self.kind != "coffee_maker":
                msg = (
                    f"person: a {self.kind} measures one person; only a coffee_maker can be "
                    "shared (person: [alex, sam]); give each person their own device"
                )
                raise ValueError(msg)
        return self

    @property
    def people(self) -> tuple[str, ...]:
        """The ids of the people who use this device (one, or several for a shared one)."""
        return tuple(self.person) if isinstance(self.person, list) else (self.person,)

    @property
    def shared(self) -> bool:
        """Whether several people use it: its drinks are asked about, never guessed."""
        return len(self.people) > 1

    @property
    def owner(self) -> str:
        """The person of a device that measures one person (the first listed of a shared one)."""
        return self.people[0]


# ---------------------------------------------------------------------------------------------
# Rules. Each rule id (docs/contract.md, "Rule ids") has a settings model; `enabled` switches
# it off.


class RuleSettings(Model):
    """Settings every rule has."""

    enabled: bool = Field(True, description="Whether this rule sends nudges.")


class CaffeineCutoff(RuleSettings):
    """caffeine.cutoff: a caffeinated drink too close to tonight's bedtime."""

    cutoff_hours: float = Field(
        9.0,
        ge=0,
        le=16,
        description="No caffeine this many hours before bed. Gardiner et al. 2023 (Sleep Med Rev "
        "69:101764, meta-analysis of 24 studies): a 107 mg coffee at least 8.8 h before bed "
        "(rounded up to 9), a 217.5 mg pre-workout drink 13.2 h; Drake et al. 2013 (J Clin Sleep "
        "Med 9(11)): 400 mg 6 h before bed still disrupted sleep.",
    )
    min_dose_mg: float = Field(20.0, ge=0, description="Drinks below this are ignored (decaf).")
    bedtime_limit_mg: float = Field(
        50.0,
        ge=0,
        description="Predicted caffeine at bedtime above this makes the nudge an alert "
        "(≈ half a coffee; EFSA 2015: 100 mg may lengthen sleep latency).",
    )


class CaffeineLastCall(RuleSettings):
    """caffeine.last_call: a reminder before the cutoff, on days with caffeine."""

    minutes_before_cutoff: int = Field(30, ge=0, le=240, description="Minutes before the cutoff.")


class CaffeineBedtimeLoad(RuleSettings):
    """caffeine.bedtime_load: caffeine predicted at bedtime is still high."""

    minutes_before_bed: int = Field(60, ge=0, le=360, description="When to check, before bed.")
    bedtime_limit_mg: float = Field(
        50.0, ge=0, description="Predicted caffeine at bedtime above this sends the nudge."
    )


class CaffeineDailyLimit(RuleSettings):
    """caffeine.daily_limit: the day's total passed the safe daily amount."""

    daily_limit_mg: float = Field(
        400.0, ge=0, description="EFSA 2015: up to 400 mg a day is safe for healthy adults."
    )


class StimulantLate(RuleSettings):
    """stimulant.late: nicotine close to bed."""

    hours_before_bed: float = Field(
        4.0,
        ge=0,
        le=12,
        description="Spadola et al. 2019 (Sleep 42(11)): nicotine within 4 h of bedtime, "
        "+6 min wake after sleep onset.",
    )


class AlcoholLate(RuleSettings):
    """alcohol.late: a drink of alcohol logged close to bed (one informational nudge)."""

    hours_before_bed: float = Field(
        3.0,
        ge=0,
        le=12,
        description="A drink logged within this many hours of bedtime gets the nudge, once an "
        "evening (project default). Ebrahim et al. 2013 (Alcohol Clin Exp Res 37(4), review of "
        "27 studies in healthy volunteers): at moderate and high doses, less REM sleep early in "
        "the night and more disrupted sleep in its second half; Spadola et al. 2019 (Sleep "
        "42(11), 785 adults): alcohol within 4 h of bedtime, lower sleep efficiency.",
    )


class ExerciseLateIntense(RuleSettings):
    """exercise.late_intense: vigorous exercise in the last hour before bed (alert), or starting
    within 3 h of it (one tip). Moderate and light exercise never count."""

    vigorous_hours_before_bed: float = Field(
        3.0,
        ge=0,
        le=8,
        description="A vigorous workout starting within this many hours of bedtime gets one "
        "informational tip (finish an hour before bed), never an alert. Stutz et al. 2019 (Sports "
        "Med 49(2), 23 studies in healthy adults): evening exercise did not impair sleep.",
    )
    alert_minutes_before_bed: int = Field(
        60,
        ge=0,
        le=240,
        description="Vigorous exercise still going this many minutes before bedtime gets the "
        "alert. Stutz et al. 2019: vigorous exercise ending ≤ 1 h before bedtime lengthened "
        "sleep-onset latency and lowered total sleep time and sleep efficiency.",
    )
    hr_fraction_of_max: float = Field(
        0.77,
        ge=0.5,
        le=1.0,
        description="Heart rate ≥ this fraction of max counts as vigorous (ACSM: 77 % HRmax).",
    )
    hr_minutes: int = Field(10, ge=1, le=120, description="Minutes the heart rate must stay high.")


class EncouragementExercise(RuleSettings):
    """encouragement.exercise: days without a workout, for a tracker that reports workouts."""

    days_without: int = Field(
        4,
        ge=2,
        le=14,
        description="On this many days after the day of the latest workout, one suggestion to "
        "move today; then none for as long again. WHO 2020 (Bull et al., Br J Sports Med 54(24)): "
        "150-300 min of moderate or 75-150 min of vigorous activity a week.",
    )
    check_at: LocalTime = Field(
        time(11, 0), description="Local time of the daily check; before 18:00 (daytime only)."
    )

    @field_validator("check_at")
    @classmethod
    def _daytime(cls, v: time) -> time:
        if not time(6, 0) <= v < time(18, 0):
            msg = "the encouragement is a daytime suggestion: check_at from 06:00 to before 18:00"
            raise ValueError(msg)
        return v


class WinddownStretch(RuleSettings):
    """winddown.stretch: time to wind down with light stretching and dim light."""

    minutes_before_bed: int = Field(45, ge=5, le=240, description="Minutes before bedtime.")


class StressRelax(RuleSettings):
    """stress.relax: high stress held in the evening."""

    level: int = Field(75, ge=0, le=100, description="Stress level (0-100) that counts as high.")
    minutes: int = Field(20, ge=1, le=240, description="Minutes it must stay high.")
    hours_before_bed: float = Field(4.0, ge=0, le=12, description="Window before bedtime.")


class SunlightDaily(RuleSettings):
    """sunlight.daily: not enough daylight by mid-afternoon."""

    check_at: LocalTime = Field(time(15, 0), description="Local time of the daily check.")
    min_minutes: int = Field(
        15,
        ge=0,
        le=600,
        description="Daylight minutes a day below which the check nudges (project default). "
        "Brown et al. 2022 (PLoS Biol 20(3)): bright daytime light, ≥ 250 lx melanopic EDI; "
        "Burns et al. 2022 (J Affect Disord, UK Biobank): each hour outdoors, fewer insomnia "
        "symptoms. A day without a reading is unknown and gets no nudge.",
    )


class TwitchNightSummary(RuleSettings):
    """twitch.night_summary: a plain summary of last night's movements.

    The scoring settings here apply to every twitch rule and to `last_night` in the state, even
    when this nudge is switched off.
    """

    plm_rules: Literal["wasm", "aasm"] = Field(
        "wasm",
        description="Limb-movement series rules: wasm = onset-to-onset 10-90 s (Ferri et al. "
        "2016, WASM standards, Sleep Med 26:86-95); aasm = 5-90 s (Berry et al., AASM Scoring "
        "Manual 2.5, 2018). Both need at least 4 consecutive limb movements of 0.5-10 s.",
    )
    onset_quiet_min: float = Field(
        10.0,
        gt=0,
        le=60,
        description="Sleep onset is the start of the first this many minutes in bed without a "
        "movement above `movement_threshold` (the 10-minute figure matches "
        "actigraphy's immobility criteria for sleep onset).",
    )
    movement_threshold: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Movements stronger than this (0-1) break the quiet window of sleep onset; "
        "project default, a small fidget on the sensor's scale.",
    )
    hypnic_window_min: float = Field(
        30.0,
        ge=0,
        le=120,
        description="A hypnic jerk is an isolated strong movement within this many minutes of "
        "sleep onset (sleep starts happen at the sleep-onset transition; ICSD-3 isolated "
        "symptoms and normal variants).",
    )
    hypnic_min_intensity: float = Field(
        0.5,
        ge=0,
        le=1,
        description="How strong (0-1) a movement must be to count as a hypnic jerk, a whole-body "
        "start (project default).",
    )
    got_up_min_in_bed_h: float = Field(
        3.0,
        ge=0,
        le=12,
        description="Getting up ends the night (and sends the summary before wake time) only "
        "after this many hours in bed.",
    )
    got_up_before_wake_min: int = Field(
        60,
        ge=0,
        le=360,
        description="... and only when it is at most this many minutes before the wake time; "
        "an earlier trip out of bed is a night-time waking.",
    )


class TwitchFrequent(RuleSettings):
    """twitch.frequent: a periodic limb-movement pattern on several nights. It asks a short
    check-in; it suggests a sleep specialist only with symptoms (restless legs, or unrefreshing
    sleep)."""

    plm_index: float = Field(
        15.0,
        ge=0,
        description="ICSD-3: a PLMS index above 15/h in adults. Common without complaints: "
        "25.3 % of 1,084 adults in the Wisconsin Sleep Cohort (Leary et al. 2018, Clin "
        "Neurophysiol 129(11)), 28.6 % of 2,162 adults aged 40-80 in HypnoLaus (Haba-Rubio et "
        "al. 2016, Ann Neurol 79(3)).",
    )
    nights: int = Field(3, ge=1, le=7, description="Nights above the index, of the last 7.")
    rested_max: int = Field(
        2,
        ge=1,
        le=5,
        description="A morning check-in's 'how rested' (1-5) at or below this counts as "
        "unrefreshing sleep. Leary et al. 2018: sleepiness differed with PLMS only together "
        "with restless-legs symptoms.",
    )
    unrested_mornings: int = Field(
        3,
        ge=1,
        le=7,
        description="Mornings of the last 7 rested at or below `rested_max` that, with the "
        "pattern, suggest a sleep specialist (as do yes to all four restless-legs questions).",
    )
    repeat_days: int = Field(
        7, ge=1, le=90, description="At most one such nudge in this many days."
    )


class TwitchDaytime(RuleSettings):
    """twitch.daytime: daytime twitching logged with twitching at night."""

    days: int = Field(2, ge=1, le=7, description="Days with daytime twitching, of the last 7.")
    repeat_days: int = Field(
        14, ge=1, le=90, description="At most one such nudge in this many days."
    )


class CheckinMorning(RuleSettings):
    """checkin.morning: the morning check-in, asked after wake time (a person can turn it off
    with `morning_checkin: false`)."""

    minutes_after_wake: int = Field(
        30, ge=0, le=360, description="Minutes after the wake time the check-in is asked."
    )


class InsightCorrelation(RuleSettings):
    """insight.correlation: what is associated with this person's worse nights."""

    min_nights: int = Field(14, ge=10, description="Nights stored before the first insight.")
    min_group_nights: int = Field(
        5,
        ge=3,
        description="An exposure is compared only with at least this many nights with it and "
        "this many without.",
    )
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = Field(
        "sun", description="Day of the week of the weekly insight."
    )
    check_at: LocalTime = Field(time(10, 0), description="Local time of the weekly insight.")
    permutations: int = Field(
        2000,
        ge=200,
        le=100_000,
        description="Shuffles of the permutation test per factor and outcome (the smallest "
        "p-value is 1/(n+1): Phipson & Smyth 2010); seeded from person and date.",
    )
    false_discovery_rate: float = Field(
        0.10,
        gt=0,
        le=0.5,
        description="Benjamini-Hochberg false-discovery rate across every comparison of a week "
        "(Benjamini & Hochberg 1995); with no real effect, about the share of weeks that report "
        "anything.",
    )


class HouseholdWhose(RuleSettings):
    """household.whose: a drink from a shared coffee maker asks its people whose it was."""

    answer_within_min: int = Field(
        30,
        ge=1,
        le=24 * 60,
        description="Minutes the question stays open; unanswered by then, the drink is recorded "
        "as unattributed and nobody's caffeine changes (project default). Switched off, a shared "
        "maker's drinks are recorded as unattributed at once.",
    )


class QuietHours(Model):
    """No scheduled nudge goes out between bedtime + `after_bedtime_min` and wake."""

    after_bedtime_min: int = Field(15, ge=0, le=240, description="Minutes after bedtime.")


class NudgeBudget(Model):
    """Routine nudges (the caffeine last call and bedtime load, the wind-down, daylight and
    encouragement: reminders the coach schedules itself) per person and evening. A nudge that
    answers something the person just did (a late coffee, a workout, a drink) never counts and is
    never held back."""

    routine_per_evening: int = Field(
        2,
        ge=0,
        le=10,
        description="At most this many routine nudges a person gets per evening (the day up to "
        "that night's bedtime); one more is dropped and recorded. The wind-down keeps its place.",
    )
    merge_within_min: int = Field(
        30,
        ge=0,
        le=120,
        description="The bedtime-load warning goes out inside the wind-down, as one nudge, when "
        "their times are at most this many minutes apart.",
    )


#: Settings under `rules:` that are not rules (no rule id, no nudges of their own).
NOT_RULES = frozenset({"quiet_hours", "nudge_budget"})


class Rules(Model):
    """Per-rule settings, keyed by rule id; every default is the evidence-based one."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    caffeine_cutoff: CaffeineCutoff = Field(
        default_factory=CaffeineCutoff, alias="caffeine.cutoff", description=CaffeineCutoff.__doc__
    )
    caffeine_last_call: CaffeineLastCall = Field(
        default_factory=CaffeineLastCall,
        alias="caffeine.last_call",
        description=CaffeineLastCall.__doc__,
    )
    caffeine_bedtime_load: CaffeineBedtimeLoad = Field(
        default_factory=CaffeineBedtimeLoad,
        alias="caffeine.bedtime_load",
        description=CaffeineBedtimeLoad.__doc__,
    )
    caffeine_daily_limit: CaffeineDailyLimit = Field(
        default_factory=CaffeineDailyLimit,
        alias="caffeine.daily_limit",
        description=CaffeineDailyLimit.__doc__,
    )
    stimulant_late: StimulantLate = Field(
        default_factory=StimulantLate, alias="stimulant.late", description=StimulantLate.__doc__
    )
    alcohol_late: AlcoholLate = Field(
        default_factory=AlcoholLate, alias="alcohol.late", description=AlcoholLate.__doc__
    )
    exercise_late_intense: ExerciseLateIntense = Field(
        default_factory=ExerciseLateIntense,
        alias="exercise.late_intense",
        description=ExerciseLateIntense.__doc__,
    )
    encouragement_exercise: EncouragementExercise = Field(
        default_factory=EncouragementExercise,
        alias="encouragement.exercise",
        description=EncouragementExercise.__doc__,
    )
    winddown_stretch: WinddownStretch = Field(
        default_factory=WinddownStretch,
        alias="winddown.stretch",
        description=WinddownStretch.__doc__,
    )
    stress_relax: StressRelax = Field(
        default_factory=StressRelax, alias="stress.relax", description=StressRelax.__doc__
    )
    sunlight_daily: SunlightDaily = Field(
        default_factory=SunlightDaily, alias="sunlight.daily", description=SunlightDaily.__doc__
    )
    twitch_night_summary: TwitchNightSummary = Field(
        default_factory=TwitchNightSummary,
        alias="twitch.night_summary",
        description=TwitchNightSummary.__doc__,
    )
    twitch_frequent: TwitchFrequent = Field(
        default_factory=TwitchFrequent, alias="twitch.frequent", description=TwitchFrequent.__doc__
    )
    twitch_daytime: TwitchDaytime = Field(
        default_factory=TwitchDaytime, alias="twitch.daytime", description=TwitchDaytime.__doc__
    )
    checkin_morning: CheckinMorning = Field(
        default_factory=CheckinMorning,
        alias="checkin.morning",
        description=CheckinMorning.__doc__,
    )
    insight_correlation: InsightCorrelation = Field(
        default_factory=InsightCorrelation,
        alias="insight.correlation",
        description=InsightCorrelation.__doc__,
    )
    household_whose: HouseholdWhose = Field(
        default_factory=HouseholdWhose,
        alias="household.whose",
        description=HouseholdWhose.__doc__,
    )
    quiet_hours: QuietHours = Field(
        default_factory=QuietHours, alias="quiet_hours", description=QuietHours.__doc__
    )
    nudge_budget: NudgeBudget = Field(
        default_factory=NudgeBudget, alias="nudge_budget", description=NudgeBudget.__doc__
    )


@dataclass(frozen=True, slots=True)
class ReferenceProblem:
    """An id given twice, or a device naming someone who is not in `people`.

    `loc` is where the problem is (`("people", 3, "id")`, `("devices", 0, "person")`), `at` every
    place that takes part in it (both items of a duplicate), `message` says what is wrong there.
    """

    loc: tuple[str | int, ...]
    at: tuple[tuple[str | int, ...], ...]
    message: str

    @property
    def text(self) -> str:
        """The problem in one line, its section first: `people: id 'sam' appears twice`."""
        return f"{self.loc[0]}: {self.message}"


def reference_problems(
    person_ids: Sequence[Any], devices: Sequence[tuple[Any, Any]]
) -> list[ReferenceProblem]:
    """Ids given more than once and devices whose person is not configured.

    `person_ids` holds each person's id in file order, `devices` each device's (id, person);
    entries that are not text (a person without an id, a broken item) are skipped: they are
    reported where they are. Works on validated models and on a file's raw data alike, so a
    config file's reader can report these beside every other problem.
    """
    found: list[ReferenceProblem] = []
    for section, ids in (("people", person_ids), ("devices", [d[0] for d in devices])):
        where: dict[str, list[int]] = {}
        for index, value in enumerate(ids):
            if isinstance(value, str):
                where.setdefault(value, []).append(index)
        for value, indexes in where.items():
            if len(indexes) > 1:
                times = "twice" if len(indexes) == 2 else f"{len(indexes)} times"
                found.append(
                    ReferenceProblem(
                        (section, indexes[1], "id"),
                        tuple((section, i, "id") for i in indexes),
                        f"id {value!r} appears {times}",
                    )
                )
    known = [p for p in person_ids if isinstance(p, str)]
    if not known:
        return found  # nobody (or nobody valid) to name: the people section says why
    for index, (device_id, person) in enumerate(devices):
        # One id, or the list of a device several people share.
        named = [person] if isinstance(person, str) else person if isinstance(person, list) else []
        for one in named:
            if isinstance(one, str) and one not in known:
                who = f"device {device_id!r}" if isinstance(device_id, str) else "the device"
                choices = ", ".join(dict.fromkeys(known))
                found.append(
                    ReferenceProblem(
                        ("devices", index, "person"),
                        (("devices", index, "person"),),
                        f"{who} names person {one!r}, who is not in people ({choices})",
                    )
                )
    return found


class Config(Model):
    """The coaching configuration: time zone, people, devices and rules."""

    timezone: str = Field(
        description="IANA time zone (Europe/Berlin); schedules are local wall-clock times."
    )
    people: list[Person] = Field(min_length=1, description="The people the coach looks after.")
    devices: list[Device] = Field(default_factory=list, description="The sensors it listens to.")
    rules: Rules = Field(default_factory=Rules, description=Rules.__doc__)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as err:
            msg = f"unknown time zone {v!r}: use an IANA name such as Europe/Berlin"
            raise ValueError(msg) from err
        return v

    @model_validator(mode="after")
    def _references(self) -> Config:
        problems = reference_problems(
            [p.id for p in self.people], [(d.id, d.person) for d in self.devices]
        )
        if problems:
            raise ValueError("; ".join(p.text for p in problems))
        return self

    # A config is frozen, so what is derived from it is computed on first use and kept on the
    # instance: `decide()` reads both for every event.

    @cached_property
    def tz(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)

    @cached_property
    def people_by_id(self) -> Mapping[str, Person]:
        """The people by id."""
        return MappingProxyType({p.id: p for p in self.people})

    def person(self, person_id: str) -> Person | None:
        """The person with this id, if configured."""
        return self.people_by_id.get(person_id)


# ---------------------------------------------------------------------------------------------
# Validation errors in plain words.

#: What each id pattern of the config asks for, in words.
_PATTERN_WORDS: Mapping[str, str] = MappingProxyType(
    {
        r"^[A-Za-z0-9_-]{1,32}$": "1 to 32 letters, digits, _ or -",
        r"^[A-Za-z0-9_-]{1,64}$": "1 to 64 letters, digits, _ or -",
        r"^[^#+]+$": "no MQTT wildcard (+ or #)",
    }
)


def describe_value(value: Any) -> str:
    """A value as an error message shows it: short, and saying what kind of thing it is."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping (key: value lines)"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any) -> str:
    """16.0 as 16, 0.5 as 0.5: a bound as the reader would write it."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def plain_error(error: Mapping[str, Any]) -> str:
    """One pydantic error of a config (or a device's options) in plain words, with what was given.

    Every error type a config can produce has its own wording; a type not listed here keeps
    pydantic's message, with the value given.
    """
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    got = f", got {describe_value(value)}"
    if kind == "missing":
        return "missing (required)"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("string_type", "string_unicode"):
        return "expected text" + got
    if kind in ("int_type", "int_parsing", "int_from_float", "int_parsing_size"):
        return "expected a whole number" + got
    if kind in ("float_type", "float_parsing", "finite_number"):
        return "expected a number" + got
    if kind in ("bool_type", "bool_parsing"):
        return "expected true or false" + got
    if kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        return "expected a mapping (key: value lines)" + got
    if kind in ("list_type", "tuple_type", "iterable_type"):
        return "expected a list (lines starting with -)" + got
    if kind == "greater_than_equal":
        return f"must be at least {_number(ctx.get('ge'))}" + got
    if kind == "greater_than":
        return f"must be more than {_number(ctx.get('gt'))}" + got
    if kind == "less_than_equal":
        return f"must be at most {_number(ctx.get('le'))}" + got
    if kind == "less_than":
        return f"must be less than {_number(ctx.get('lt'))}" + got
    if kind == "literal_error":
        expected = str(ctx.get("expected"))
        close = difflib.get_close_matches(str(value), re.findall(r"'([^']*)'", expected), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"expected one of {expected}" + got + hint
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        if isinstance(value, list | tuple | dict) and not value:
            return f"needs at least {least} {'entry' if least == 1 else 'entries'}; it is empty"
        return f"needs at least {least} entries, got {ctx.get('actual_length')}"
    if kind == "too_long":
        return f"at most {ctx.get('max_length')} entries, got {ctx.get('actual_length')}"
    if kind == "string_too_short":
        least = ctx.get("min_length", 1)
        return "must not be empty" if least == 1 else f"needs at least {least} characters" + got
    if kind == "string_too_long":
        return f"at most {ctx.get('max_length')} characters" + got
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return f"expected {_PATTERN_WORDS.get(pattern, f'text matching {pattern}')}" + got
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    shown_already = isinstance(value, str) and value and value in message
    if not shown_already and (value is None or isinstance(value, str | int | float | bool)):
        message += got
    return message
