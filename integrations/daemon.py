"""`sleepcoach run`: the daemon's wiring, its start and stop, and `--check`.

How it fits together. `run_daemon` opens storage, chooses (and if need be starts) the broker
(`integrations.broker`), and wires the parts around one inbox (`integrations.inbox`): the broker
link (`integrations.mqtt`) and the timer service (`integrations.scheduler`) put what happens on
it, Home Assistant's bridge too when configured, and the single consumer
(`integrations.consumer`) takes it from there: it decides through the core, stores each batch
(`integrations.writer`) and only then sends what the batch owes (`integrations.publisher`), the
live dashboard (`integrations.dashboard`, when enabled) included. Logs are set up by
`integrations.logs`.

Shutdown (SIGTERM, SIGINT): the consumer stops taking messages, finishes the batch in hand, writes
it, acknowledges it, and the link publishes `offline` and disconnects: well within 5 s.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import time
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

from coach import dashboard as view
from integrations import discovery
from integrations.broker import BrokerChoice, choose_broker, start_broker
from integrations.config_file import (
    ConfigError,
    ConfigFile,
    choose_config,
    load_config,
    with_env_overrides,
)
from integrations.consumer import Consumer
from integrations.data_dir import data_dir
from integrations.error import ProjectError
from integrations.identity import identity, storage_url
from integrations.inbox import Inbox
from integrations.logs import setup_logging
from integrations.mqtt import (
    CONNACK_TIMEOUT_S,
    BrokerLink,
    BrokerRefusedError,
    LinkSettings,
    MqttError,
    SessionTakenError,
)
from integrations.scheduler import TimerService
from integrations.storage import Storage, StorageError, safe_url
from integrations.subcommand import Command, SubParsers, say

if TYPE_CHECKING:  # the web server is imported only when the dashboard is on
    from integrations.dashboard import Dashboard

log = logging.getLogger(__name__)

SHUTDOWN_LINK_S: Final = 1.5
#: The exit status when another client took our MQTT session (the same client id, on the same
#: broker): EX_CONFIG of sysexits.h, as the cure is a client id of its own. The systemd unit
#: does not restart on it, which would only take the session back and forth.
EXIT_SESSION_TAKEN: Final = 78


def link_settings(config: ConfigFile, choice: BrokerChoice, *, probe: bool = False) -> LinkSettings:
    """The link's settings for a config and a broker choice."""
    mqtt = config.mqtt
    prefix = mqtt.topic_prefix
    topics = list(dict.fromkeys([*(d.topic for d in config.devices), f"{prefix}/+/command"]))
    if config.homeassistant is not None:
        topics.append(discovery.birth_topic(config))  # re-send discovery when HA comes online
    client_id = identity(config).client_id
    username = mqtt.username
    if choice.embedded and username is None:
        # amqtt persists only named sessions (an anonymous one loses what was queued).
        username = client_id
    password = mqtt.password.get_secret_value() if mqtt.password is not None else None
    return LinkSettings(
        host=choice.host,
        port=choice.port,
        tls=choice.tls,
        client_id=f"{client_id}-check" if probe else client_id,
        status_topic=f"{prefix}/status",
        subscriptions=[] if probe else topics,
        ca_file=mqtt.ca_file,
        cert_file=mqtt.cert_file,
        key_file=mqtt.key_file,
        username=username,
        password=password,
        keepalive_s=mqtt.keepalive_s,
        session_expiry_s=mqtt.session_expiry_s,
        mqtt5=not choice.embedded,
        probe=probe,
    )


def _load(args: argparse.Namespace) -> ConfigFile:
    choice = choose_config(args.config)
    if choice.source == "example":
        log.info("no --config given: running the example config %s", choice.path)
    return with_env_overrides(load_config(choice.path), os.environ)


def _print_topics(config: ConfigFile, dashboard: Dashboard | None = None) -> None:
    prefix = config.mqtt.topic_prefix
    say("sleepcoach is listening. Devices publish to:")
    for device in config.devices:
        say(f"  {device.topic:<32} {device.kind} ({device.profile}) for {', '.join(device.people)}")
    for person in config.people:
        say(f"  {prefix + '/' + person.id + '/command':<32} commands from {person.id}")
    say(
        f"Nudges: {prefix}/<person>/nudge, state: {prefix}/<person>/state (retained), "
        f"errors: {prefix}/errors, status: {prefix}/status"
    )
    if dashboard is not None:
        say(f"Dashboard: {dashboard.url}")


def run_daemon(config: ConfigFile) -> int:
    """Run until SIGTERM/SIGINT; 0 on a clean stop, 1 when the broker refused us,
    `EXIT_SESSION_TAKEN` when another client holds our session."""
    storage = Storage.open(storage_url(config), config.storage.keep_days)
    log.info("storage: %s", safe_url(storage.url))
    log.info("%s", identity(config).describe())
    choice, broker = start_broker(config, choose_broker(config), data_dir())
    bridge = None
    link: BrokerLink | None = None
    timers: TimerService | None = None
    dashboard: Dashboard | None = None
    try:
        inbox = Inbox()
        settings = link_settings(config, choice)
        link = BrokerLink(
            settings,
            deliver=inbox.deliver,
            on_published=inbox.published,
            on_session_lost=lambda _err: inbox.stop(),
        )
        timers = TimerService(config.tz, fire=inbox.timer_due, housekeeping=inbox.housekeeping)
        if config.homeassistant is not None:
            from integrations.home_assistant import HomeAssistantBridge  # noqa: PLC0415

            bridge = HomeAssistantBridge(config, inbox.external, storage)
        dashboard = _start_dashboard(config, storage)
        consumer = Consumer(
            config, storage, link, timers, sink=bridge, inbox=inbox, viewer=dashboard
        )
        _install_signals(inbox)
        storage.purge(consumer.clock())
        timers.start()
        link.start()
        try:
            if not link.wait_up(10.0, cancel=inbox.stopping):
                if inbox.stopping.is_set():  # SIGTERM while the broker does not answer
                    log.info("stopped")
                    return 0
                log.warning("not connected to the broker yet; messages wait until it is")
        except BrokerRefusedError as err:
            log.error("%s", err)
            say(f"error: {err}", err=True)
            return 1
        except SessionTakenError as err:
            say(f"error: {err}", err=True)
            return EXIT_SESSION_TAKEN
        if bridge is not None:
            consumer.publisher.discovery()
            bridge.start()
        consumer.start()
        _print_topics(config, dashboard)
        consumer.serve()
        if link.session_lost is not None:
            say(f"error: {link.session_lost}", err=True)
            return EXIT_SESSION_TAKEN
        log.info("stopped")
        return 0
    finally:
        _shutdown(timers, bridge, link, storage, broker, dashboard=dashboard)


def _start_dashboard(config: ConfigFile, storage: Storage) -> Dashboard | None:
    """The live dashboard, fed the stored nights of its trends; None when off or it cannot listen.

    A dashboard that cannot have its address is logged and left out: the coaching goes on.
    """
    if not config.dashboard.enabled:
        return None
    from integrations.dashboard import Dashboard, DashboardError  # noqa: PLC0415

    dashboard = Dashboard(config.core, config.dashboard)
    try:
        dashboard.start()
    except DashboardError as err:
        log.error("%s; the coach runs on without its dashboard", err)
        return None
    since = (datetime.now(config.tz).date() - timedelta(days=view.TREND_DAYS + 1)).isoformat()
    try:
        for night in storage.nights(since=since):
            dashboard.record_night(night.person, night.summary)
    except StorageError as err:
        log.error("the dashboard could not read the stored nights: %s", err)
    return dashboard


def _shutdown(
    timers: TimerService | None,
    bridge: Any,
    link: BrokerLink | None,
    storage: Storage,
    broker: Any,
    *,
    dashboard: Dashboard | None = None,
) -> None:
    """Stop everything the daemon started, in order, within the 5 s a service manager allows."""
    started = time.monotonic()
    if dashboard is not None:
        dashboard.stop(timeout=1.0)
    if timers is not None:
        timers.stop()
    if bridge is not None:
        bridge.stop(timeout=1.0)
    if link is not None:
        link.stop(timeout=SHUTDOWN_LINK_S)
    storage.close()
    if broker is not None:
        broker.stop(timeout=2.0)
    log.debug("shutdown took %.2f s", time.monotonic() - started)


def _install_signals(inbox: Inbox) -> None:
    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        inbox.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def check(config: ConfigFile) -> int:
    """`run --check`: config, storage, client id and broker, each said in one line; exit 1 on a
    failure."""
    failed = False
    try:
        storage = Storage.open(storage_url(config), config.storage.keep_days)
        say(
            f"storage: OK ({safe_url(storage.url)}, schema {storage.schema_version()}, "
            f"{storage.count()} events)"
        )
        storage.close()
    except StorageError as err:
        say(f"storage: FAILED: {err}")
        failed = True
    say(identity(config).describe())
    try:
        choice = choose_broker(config)
    except MqttError as err:
        say(f"broker: FAILED: {err}")
        return 1
    if choice.start is not None:
        say(f"broker: OK ({choice.why}; {choice.starts()})")
        return 1 if failed else 0
    link = BrokerLink(link_settings(config, choice, probe=True), deliver=lambda _m: None)
    link.start()
    # Long enough for the MQTT 3.1.1 retry after an unanswered MQTT 5 CONNECT (amqtt answers
    # none with properties): 5 s more than that wait, else an amqtt broker always "FAILED".
    wait_s = CONNACK_TIMEOUT_S + 5.0
    try:
        if link.wait_up(wait_s):
            say(f"broker: OK ({link.settings.where})")
        else:
            # Why it could not connect (a TLS or socket error), else that nothing answered.
            why = link.last_error or f"no answer within {wait_s:g} s"
            say(f"broker: FAILED: {link.settings.where}: {why}")
            failed = True
    except BrokerRefusedError as err:
        say(f"broker: FAILED: {err}")
        failed = True
    finally:
        link.stop(timeout=1.0)
    return 1 if failed else 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="the YAML config (default: $SLEEPCOACH_CONFIG, else the example config)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="validate the config, the storage and the broker connection, then exit",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("SLEEPCOACH_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="debug logs one line per decision (default: info, transitions only)",
    )
    parser.add_argument(
        "--log-format",
        default=os.environ.get("SLEEPCOACH_LOG_FORMAT", "text"),
        choices=["text", "json"],
        help="text for people, json for log collectors",
    )


def run_command(args: argparse.Namespace) -> int:
    """`sleepcoach run`: the daemon (or `--check`)."""
    setup_logging(args.log_level, args.log_format)
    try:
        config = _load(args)
    except ConfigError as err:
        for problem in err.problems:
            say(problem, err=True)
        return 1
    try:
        return check(config) if args.check else run_daemon(config)
    except ProjectError as err:
        log.error("%s", err)
        say(f"error: {err}", err=True)
        return 1


COMMAND: Final = Command(
    "run",
    "the daemon: MQTT in, nudges out (a broker and storage are found or started when not set)",
    _arguments,
    run_command,
)


def register(subparsers: SubParsers) -> None:
    """Add `sleepcoach run` to the command line."""
    COMMAND.register(subparsers)
