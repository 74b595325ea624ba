#!/usr/bin/env bash
# Run sre-triage on this machine: API + worker, with a local Redis when none is reachable.
# First run: writes .env from .env.example with fresh random tokens (printed once), builds the runbook index.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-env.sh
ensure_system_packages redis-server:redis-server
ensure_python_env
PY=.venv/bin/python
mkdir -p data

if [ ! -f .env ]; then
    webhook_token="$($PY -c 'import secrets; print(secrets.token_urlsafe(32))')"
    api_token="$($PY -c 'import secrets; print(secrets.token_urlsafe(32))')"
    sed -e "s|^WEBHOOK_TOKEN=.*|WEBHOOK_TOKEN=${webhook_token}|" -e "s|^API_TOKEN=.*|API_TOKEN=${api_token}|" \
        .env.example > .env
    chmod 600 .env
    echo "wrote .env with new tokens (WEBHOOK_TOKEN for the Grafana contact point, API_TOKEN for the API/UI):"
    grep -E '^(WEBHOOK_TOKEN|API_TOKEN)=' .env
fi

redis_url="$($PY -c 'from triage.settings import load_settings; print(load_settings().redis.redis_url)')"
if ! $PY -c "import sys, redis; redis.Redis.from_url(sys.argv[1], socket_timeout=2).ping()" "$redis_url" 2>/dev/null; then
    port="$($PY -c 'import sys; from urllib.parse import urlparse; print(urlparse(sys.argv[1]).port or 6379)' "$redis_url")"
    echo "Redis at $redis_url is not reachable: starting a local redis-server on 127.0.0.1:$port (data in data/redis)"
    mkdir -p data/redis
    redis-server --port "$port" --bind 127.0.0.1 --dir "$PWD/data/redis" --appendonly yes --daemonize yes \
        --logfile "$PWD/data/redis/redis.log"
fi

status=0
.venv/bin/sre-triage ingest || status=$?
local_model="$($PY -c 'from triage.settings import load_settings; print(not load_settings().knowledge.embeddings_base_url)')"
if [ "$status" -eq 3 ] && [ "$local_model" = "True" ]; then
    # built with another model (or another build of the local one): re-embedding locally takes seconds
    echo "re-embedding the runbook index with the local model"
    status=0
    .venv/bin/sre-triage ingest --rebuild || status=$?
fi
[ "$status" -eq 0 ] || echo "runbook index not built (see the message above); triage runs without runbooks"

.venv/bin/sre-triage worker &
worker=$!
trap 'kill $worker 2>/dev/null || true' EXIT INT TERM
.venv/bin/sre-triage serve
