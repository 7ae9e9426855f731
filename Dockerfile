# syntax=docker/dockerfile:1.7
# One image for every Jatra process: `jatra serve all|auth|catalog|seats|bookings`, `jatra worker NAME`,
# `jatra migrate`. Runtime dependencies come from requirements.image.lock, installed with their hashes.
# Built and run by compose/ and helm/; no Docker engine runs on the development machines (see README).

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/jatra
WORKDIR /src
COPY requirements.image.lock ./
RUN /opt/jatra/bin/pip install --require-hashes --only-binary=:all: -r requirements.image.lock
COPY pyproject.toml README.md ./
COPY platform ./platform
RUN /opt/jatra/bin/pip install --no-deps .
# the generated rules, dashboards and Elasticsearch/Kibana objects travel with the code that reads them
COPY alerts/generated ./alerts/generated
COPY dashboards/generated ./dashboards/generated
COPY logging/generated ./logging/generated

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="jatra" \
      org.opencontainers.image.description="Jatra railway ticketing: every service and worker" \
      org.opencontainers.image.source="https://example.invalid/jatra"
ENV PATH=/opt/jatra/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    JATRA_API_HOST=0.0.0.0 \
    JATRA_STATE_DIR=/var/lib/jatra \
    JATRA_PORT=8000
RUN groupadd --system --gid 10001 jatra \
    && useradd --system --uid 10001 --gid jatra --home-dir /var/lib/jatra --shell /usr/sbin/nologin jatra \
    && mkdir -p /var/lib/jatra /var/log/jatra \
    && chown jatra:jatra /var/lib/jatra /var/log/jatra
COPY --from=build /opt/jatra /opt/jatra
COPY --from=build /src/alerts/generated /opt/jatra/share/alerts/generated
COPY --from=build /src/dashboards/generated /opt/jatra/share/dashboards/generated
COPY --from=build /src/logging/generated /opt/jatra/share/logging/generated
# the only writable places: the state directory and the log directory (volumes or emptyDirs), and /tmp
VOLUME ["/var/lib/jatra", "/var/log/jatra"]
USER 10001:10001
WORKDIR /var/lib/jatra
EXPOSE 8000
# every process serves /health on JATRA_PORT (the HTTP services and the workers alike)
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('JATRA_PORT', '8000'), timeout=2)"]
ENTRYPOINT ["jatra"]
CMD ["serve", "all", "--port", "8000"]
