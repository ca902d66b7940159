# meetscale operator image. Build: docker build -t ghcr.io/meetscale/meetscale:0.1.0 .
# (the chart's default image.registry/repository; push it to your registry and set those.)
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir --upgrade pip==25.3 \
 && pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="meetscale" \
      org.opencontainers.image.description="Capacity operator for a shared Jitsi conferencing system" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
 && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin meetscale
USER 10001
# /metrics on 8000, /healthz and /readyz on 8081, the webhook (when enabled) on 9443. Nothing
# is written to the filesystem: it runs with readOnlyRootFilesystem (tests/integration/
# test_entrypoint.py runs this command on a read-only root).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MEETSCALE_METRICS_HOST=0.0.0.0 \
    MEETSCALE_METRICS_PORT=8000 \
    MEETSCALE_HEALTH_HOST=0.0.0.0 \
    MEETSCALE_HEALTH_PORT=8081
EXPOSE 8000 8081 9443
ENTRYPOINT ["meetscale"]
CMD ["run"]
