"""The state's JSON without its duplicate keys, and the keys given back in time order."""

from __future__ import annotations

import json

from coach.state import CoachState, dump_state, load_state, restore_seen


def _state() -> CoachState:
    state = CoachState(clock=100.0)
    state.person("alex").caffeine_days["2026-11-24"] = 63.0
    state.seen = {"watch|a|1": 10.0, "watch|b|2": 20.0}
    return state


def test_a_dump_without_seen_leaves_only_the_keys_out() -> None:
    state = _state()
    raw = dump_state(state, seen=False)
    assert "seen" not in json.loads(raw)
    restored = load_state(raw)
    assert restored.seen == {}
    restored.seen = state.seen
    assert restored == state
    assert state.seen == {"watch|a|1": 10.0, "watch|b|2": 20.0}  # the live state keeps them


def test_keys_given_back_are_merged_in_time_order() -> None:
    state = _state()
    restore_seen(state, [("ring|c|3", 15.0), ("watch|b|2", 20.0), ("band|d|4", 5.0)])
    assert list(state.seen.items()) == [
        ("band|d|4", 5.0),
        ("watch|a|1", 10.0),
        ("ring|c|3", 15.0),
        ("watch|b|2", 20.0),
    ]
