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
COPY pyproject.toml README.md LICENSE ./
COPY coach ./coach
COPY integrations ./integrations
# The example config is what `run` falls back to without --config; keep it in the image.
COPY config/example.yaml ./config/example.yaml
RUN pip install ".[postgres]" \
 && useradd --system --uid 10001 --home-dir /data sleepcoach \
 && mkdir -p /data /config \
 && chown sleepcoach /data

USER sleepcoach
VOLUME ["/data"]
# The live dashboard (set SLEEPCOACH_DASHBOARD_LISTEN=0.0.0.0:8099 to reach it from outside).
EXPOSE 8099
# SIGTERM: stop taking messages, store the batch in hand, publish offline, exit 0 within 5 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["sleepcoach", "run"]
