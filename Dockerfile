# leakwarden: the monitor as a small, non-root image.
#   docker build -t leakwarden .
#   docker run --rm -v "$PWD/config:/config:ro" -v leakwarden-data:/data \
#     -e DISCORD_TOKEN -e SLACK_BOT_TOKEN -e SLACK_APP_TOKEN -p 127.0.0.1:9108:9108 leakwarden
# Tokens come from the environment (the config names the variables); the config is mounted
# read-only at /config; the hit history lives in the /data volume.

# ---- build: install the project and its dependencies into a virtualenv --------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The native text core (detectors/_native.pyx) is compiled from source: a C compiler here, in
# the build stage only. Debian's stable packages, like the base image, are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml setup.py README.md LICENSE MANIFEST.in ./
COPY detectors ./detectors
COPY bot ./bot
RUN python -m venv /opt/leakwarden \
    && /opt/leakwarden/bin/pip install --no-cache-dir . \
    && find /opt/leakwarden -name "__pycache__" -type d -prune -exec rm -rf {} +

# ---- runtime: the virtualenv only, run as an unprivileged user ----------------------------
FROM python:3.11-slim-bookworm
ENV PATH=/opt/leakwarden/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LEAKWARDEN_STORAGE__PATH=/data/leakwarden.db
RUN groupadd --system --gid 10001 leakwarden \
    && useradd --system --uid 10001 --gid leakwarden --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin leakwarden \
    && mkdir -p /data /config \
    && chown leakwarden:leakwarden /data
COPY --from=build /opt/leakwarden /opt/leakwarden
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 9108
# No curl in a slim image: the interpreter that is already there asks /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4).status == 200 else 1)"]
# Exec form: leakwarden is PID 1 and gets SIGTERM itself (it drains, then exits 0).
ENTRYPOINT ["leakwarden"]
CMD ["run", "-c", "/config/config.toml", "--listen", "0.0.0.0:9108"]
