# sleepcoach: the daemon (`sleepcoach run`) in a small image. See docs/daemon.md.
FROM python:3.11-slim

# No .pyc files in the image, logs straight to the container's output.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    # The default SQLite database and the embedded broker's data go to /data (a volume).
    XDG_DATA_HOME=/data \
    SLEEPCOACH_CONFIG=/config/sleepcoach.yaml

WORKDIR /app
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY coach ./coach
COPY integrations ./integrations
# The wheel carries these: the example config (integrations/example.yaml links to it) that `run`
# falls back to, and the files it installs under share/.
COPY config/example.yaml config/sleepcoach.service config/mosquitto.conf ./config/
COPY docs/daemon.md ./docs/
# The versions the tests passed with (constraints.txt; scripts/lock makes it anew).
RUN pip install -c constraints.txt ".[postgres]" \
 && useradd --system --uid 10001 --home-dir /data sleepcoach \
 && mkdir -p /data /config \
 && chown sleepcoach /data

USER sleepcoach
VOLUME ["/data"]
# The live dashboard (set SLEEPCOACH_DASHBOARD_LISTEN=0.0.0.0:8099 to reach it from outside).
EXPOSE 8099
# SIGTERM: stop taking messages, store the batch in hand, publish offline, exit 0 within 5 s.
STOPSIGNAL SIGTERM
# $SLEEPCOACH_CONFIG when it is there (a mounted file), else the example config inside the
# package, said at start-up. Arguments go to `sleepcoach run` (e.g. --check).
ENTRYPOINT ["/bin/sh", "-c", "if [ ! -f \"$SLEEPCOACH_CONFIG\" ]; then echo \"sleepcoach: no config at $SLEEPCOACH_CONFIG (mount yours there)\" >&2; unset SLEEPCOACH_CONFIG; fi; exec sleepcoach run \"$@\"", "sleepcoach"]
