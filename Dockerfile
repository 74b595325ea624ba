# syntax=docker/dockerfile:1
# sre-triage: one image for the API (`sre-triage serve`), the worker (`sre-triage worker`) and `sre-triage ingest`.

ARG PYTHON_VERSION=3.11
# The uv that wrote uv.lock (its lock revision): an older uv may not read the lock, and `--frozen` would then fail.
# Raise it together with the uv that re-locks (tests/test_compose.py compares it with the uv on this machine).
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# ---- build: resolve the locked dependencies into /app/.venv with uv ----
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# dependencies first: this layer is reused until uv.lock changes
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY webhook ./webhook
COPY triage ./triage
COPY reports ./reports
COPY tools ./tools
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# ---- runtime: the virtualenv and the bundled runbooks, run as an unprivileged user ----
# Compose may run it as another uid (PUID/PGID, for bind-mounted folders): nothing under /app is written at run
# time, and HOME points at /tmp so no library looks for a home directory that uid does not have.
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 sre \
    && useradd --system --uid 10001 --gid sre --home-dir /app --no-create-home --shell /usr/sbin/nologin sre \
    && mkdir -p /app /data /chroma \
    && chown sre:sre /data /chroma
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY runbooks /app/runbooks
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    RUNBOOKS_DIR=/app/runbooks \
    CHROMA_DIR=/data/chroma \
    DATABASE_URL=sqlite:////data/sre-triage.db \
    API_HOST=0.0.0.0 \
    API_PORT=8080
# a named volume starts as a copy of these folders, owned by sre: the services can write to it from the first start
VOLUME ["/data", "/chroma"]
USER sre:sre
EXPOSE 8080
# /healthz answers while the process serves; the worker service overrides this with `sre-triage worker --check`
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
CMD ["sre-triage", "serve"]
