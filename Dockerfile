# meetscale operator image. Build: docker build -t meetscale:0.1.0 .
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
ENV PYTHONUNBUFFERED=1 \
    MEETSCALE_METRICS_HOST=0.0.0.0 \
    MEETSCALE_METRICS_PORT=8000
EXPOSE 8000 8081 9443
ENTRYPOINT ["meetscale"]
CMD ["run", "--liveness", "http://0.0.0.0:8081/healthz"]
