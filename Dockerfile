# The offboarding worker. Configuration comes from the environment: Temporal's standard
# variables (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS, API key) and OFFBOARDING_*.
# A patch release on a named Debian release: the image is rebuilt the same until this
# line changes (tests/integration/test_deployment.py checks every FROM is pinned).
FROM python:3.11.15-slim-trixie
WORKDIR /app
COPY pyproject.toml ./
COPY offboarding ./offboarding
COPY worker.py starter.py ./
RUN pip install --no-cache-dir . && useradd --create-home offboarding \
    && mkdir -p /data && chown offboarding /data
USER offboarding
ENV OFFBOARDING_STATE_DIR=/data/state \
    OFFBOARDING_CLIENT_DATA_ROOT=/data/client-data \
    OFFBOARDING_DOCUMENTS_ROOT=/data/documents \
    OFFBOARDING_TRANSFER_ROOT=/data/transfer \
    OFFBOARDING_ARCHIVE_ROOT=/data/archive
CMD ["python", "worker.py"]
