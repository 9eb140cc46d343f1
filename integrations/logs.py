"""The daemon's logs: to stderr, as text for people or one JSON object a line for collectors."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

#: Libraries that log too much below a warning: paho every packet at debug, amqtt its plugins at
#: info, homeassistant_api every websocket message at info.
NOISY = ("integrations.mqtt.paho", "amqtt", "transitions", "apscheduler", "homeassistant_api")


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: ts, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as JSON."""
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(level: str, fmt: str) -> None:
    """Logs to stderr: text for people, JSON (`--log-format json`) for collectors."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Python's warnings (numpy's RuntimeWarning on an overflow, a library's deprecation) go
    # through the log as well, in its format, not as bare lines on stderr.
    logging.captureWarnings(True)
    root.setLevel(level.upper())
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
