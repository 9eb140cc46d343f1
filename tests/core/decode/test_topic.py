"""Tests of MQTT topic filters and the topic router: topic to device or command topic."""

from __future__ import annotations

import pytest

from coach.config import Device
from coach.decode.topic import (
    CommandRoute,
    TopicRouter,
    filter_problem,
    matches,
    overlaps,
    own_topic_problem,
)
from tests.core.decode.conftest import PREFIX, config_of

# -- topic routing ----------------------------------------------------------------------------


ROUTED = config_of(
    {"id": "bed", "kind": "bed_motion", "topic": "home/bedroom/bed", "person": "alex"},
    {"id": "trackers", "kind": "fitness_tracker", "topic": "tracker/+/data", "person": "sam"},
    {"id": "zigbee", "kind": "bed_motion", "topic": "zigbee/#", "person": "sam"},
    {"id": "exact-in-zigbee", "kind": "coffee_maker", "topic": "zigbee/kitchen", "person": "sam"},
    {"id": "all", "kind": "coffee_maker", "topic": "#", "person": "alex"},
)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        pytest.param("home/bedroom/bed", "bed", id="an exact topic finds its device"),
        pytest.param("tracker/sam/data", "trackers", id="+ matches one level"),
        pytest.param("tracker//data", "trackers", id="+ matches an empty level"),
        pytest.param("tracker/a/b/data", "all", id="+ is only one level"),
        pytest.param("zigbee", "zigbee", id="# matches its parent level"),
        pytest.param("zigbee/bedroom/bed", "zigbee", id="# matches any depth"),
        pytest.param("zigbee/kitchen", "exact-in-zigbee", id="an exact topic beats a wildcard"),
        pytest.param("anything/else", "all", id="a lone # catches the rest"),
        pytest.param("$SYS/broker/uptime", None, id="wildcards never match $ topics"),
        pytest.param("sleepcoach/alex/nudge", None, id="# does not swallow the coach's outputs"),
        pytest.param("sleepcoach/errors", None, id="# does not swallow the error topic"),
    ],
)
def test_router_finds_the_device(topic: str, expected: str | None) -> None:
    """Exact topics, then commands, then wildcard filters in config order."""
    found = TopicRouter(ROUTED, PREFIX).route(topic)
    assert (found.id if isinstance(found, Device) else found) == expected


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        pytest.param("sleepcoach/alex/command", CommandRoute("alex"), id="a command topic"),
        pytest.param(
            "sleepcoach/bob/command", CommandRoute("bob"), id="an unknown person still routes"
        ),
        pytest.param("sleepcoach//command", None, id="an empty person is not a command topic"),
        pytest.param("sleepcoach/alex/x/command", None, id="two levels is not a command topic"),
        pytest.param("sleepcoach/alex/commands", None, id="a near miss is not a command topic"),
        pytest.param("other/alex/command", None, id="another prefix is not ours"),
    ],
)
def test_router_finds_command_topics(topic: str, expected: CommandRoute | None) -> None:
    """`<prefix>/<person>/command` routes to the person."""
    config = config_of(
        {"id": "bed", "kind": "bed_motion", "topic": "home/bedroom/bed", "person": "alex"}
    )
    assert TopicRouter(config, PREFIX).route(topic) == expected


def test_router_follows_a_custom_prefix_with_levels() -> None:
    """A prefix of several levels works like the default one."""
    router = TopicRouter(config_of(), "home/coach")
    assert router.route("home/coach/sam/command") == CommandRoute("sam")
    assert router.route("sleepcoach/sam/command") is None


# -- topic filters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "topic",
    [
        pytest.param("home/bedroom/bed", id="a plain topic"),
        pytest.param("home/+/bed", id="a + standing for one level"),
        pytest.param("tracker/#", id="a # at the end"),
        pytest.param("#", id="a lone #"),
        pytest.param("+/+", id="two + levels"),
    ],
)
def test_a_filter_with_wildcards_standing_alone_is_valid(topic: str) -> None:
    """What the config accepts: wildcards as whole levels, # only last."""
    assert filter_problem(topic) is None


@pytest.mark.parametrize(
    "topic",
    [
        pytest.param("home/be+d", id="a + glued to a level"),
        pytest.param("home/#/bed", id="a # before the end"),
        pytest.param("home/bed#", id="a # glued to a level"),
    ],
)
def test_a_wildcard_inside_a_level_is_refused(topic: str) -> None:
    """The config's words for a filter the router could not match as meant."""
    assert filter_problem(topic) == (
        "wildcards + and # must stand alone in a topic level (# only at the end)"
    )


@pytest.mark.parametrize(
    ("filter_", "topic", "expected"),
    [
        pytest.param("a/+/c", "a/b/c", True, id="+ is one level"),
        pytest.param("a/+/c", "a/b/x/c", False, id="+ is not two levels"),
        pytest.param("a/#", "a", True, id="# matches the parent level"),
        pytest.param("a/#", "b/a", False, id="# does not match another root"),
        pytest.param("+/x", "$SYS/x", False, id="wildcards skip $ topics"),
        pytest.param("a/b", "a/b/c", False, id="a longer topic does not match"),
    ],
)
def test_matches_follows_mqtt_filter_rules(filter_: str, topic: str, expected: bool) -> None:
    """MQTT filter matching, level by level."""
    assert matches(tuple(filter_.split("/")), topic) is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param("a/b", "a/b", True, id="the same topic"),
        pytest.param("a/b", "a/c", False, id="different topics"),
        pytest.param("a/+", "+/b", True, id="each wildcard covers the other's level"),
        pytest.param("a/#", "a", True, id="# covers its parent level"),
        pytest.param("a/b/#", "a/+", True, id="# meets + on the same level"),
        pytest.param("+/+", "a/b/c", False, id="two levels never match three"),
        pytest.param("sc/#", "+/x/+/y", True, id="a subtree meets any deeper filter under it"),
        pytest.param("sc/#", "sd/#", False, id="two subtrees apart"),
    ],
)
def test_overlaps_is_whether_one_topic_matches_both(a: str, b: str, expected: bool) -> None:
    """Two filters overlap when some topic matches both, whichever order they are given in."""
    assert overlaps(a, b) is expected
    assert overlaps(b, a) is expected


def test_a_device_topic_on_the_coachs_own_is_refused_saying_which() -> None:
    own = [("sc/#", "the coach's own topics")]
    assert own_topic_problem("home/bed", own) is None
    assert own_topic_problem("sc/errors", own) == (
        "'sc/errors' overlaps sc/# (the coach's own topics): the coach would take messages there "
        "for the device's; use a topic outside it"
    )
    assert "bare #" in str(own_topic_problem("#", own))
    assert "broker's own" in str(own_topic_problem("$SYS/broker/load", own))
