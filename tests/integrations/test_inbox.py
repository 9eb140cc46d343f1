"""The inbox keeps at most so many QoS 0 messages waiting; the rest are dropped and counted."""

from __future__ import annotations

from datetime import UTC, datetime

from integrations.inbox import Inbox
from integrations.mqtt import Message

AT = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _msg(mid: int, qos: int, payload: bytes = b"{}", topic: str = "home/x") -> Message:
    return Message(topic, payload, qos, mid, False, False, AT, 1)


def _waiting(inbox: Inbox) -> list[Message]:
    items = []
    while not inbox.queue.empty():
        item = inbox.queue.get_nowait()
        assert isinstance(item, Message)
        items.append(item)
    return items


def test_qos0_messages_past_the_cap_are_dropped_and_counted_per_topic() -> None:
    inbox = Inbox(max_waiting_qos0=3)
    for mid in range(5):
        inbox.deliver(_msg(mid, 0))
    inbox.deliver(_msg(9, 0, topic="home/y"))
    assert [m.mid for m in _waiting(inbox)] == [0, 1, 2]
    assert inbox.take_dropped() == {"home/x": 2, "home/y": 1}
    assert inbox.take_dropped() == {}  # counted once


def test_a_taken_message_frees_its_place() -> None:
    inbox = Inbox(max_waiting_qos0=1)
    inbox.deliver(_msg(1, 0))
    [first] = _waiting(inbox)
    inbox.taken(first)
    inbox.deliver(_msg(2, 0))
    assert [m.mid for m in _waiting(inbox)] == [2]
    assert inbox.take_dropped() == {}


def test_the_bytes_waiting_are_capped_too() -> None:
    inbox = Inbox(max_waiting_qos0=100, max_waiting_qos0_bytes=10)
    inbox.deliver(_msg(1, 0, b"x" * 6))
    inbox.deliver(_msg(2, 0, b"x" * 6))  # 12 bytes would be over
    inbox.deliver(_msg(3, 0, b"x" * 4))  # 10 fits
    assert [m.mid for m in _waiting(inbox)] == [1, 3]
    assert inbox.take_dropped() == {"home/x": 1}


def test_qos1_messages_are_never_dropped() -> None:
    """The broker bounds those (Receive Maximum) and redelivers what is not acknowledged."""
    inbox = Inbox(max_waiting_qos0=0)
    for mid in range(3):
        inbox.deliver(_msg(mid, 1))
    assert [m.mid for m in _waiting(inbox)] == [0, 1, 2]
    assert inbox.take_dropped() == {}
