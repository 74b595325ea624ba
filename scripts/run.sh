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
redis_port=""
if ! $PY -c "import sys, redis; redis.Redis.from_url(sys.argv[1], socket_timeout=2).ping()" "$redis_url" 2>/dev/null; then
    redis_port="$($PY -c 'import sys; from urllib.parse import urlparse; print(urlparse(sys.argv[1]).port or 6379)' "$redis_url")"
    echo "Redis at $redis_url is not reachable: starting a local redis-server on 127.0.0.1:$redis_port (data in data/redis)"
    mkdir -p data/redis
    redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$PWD/data/redis" --appendonly yes --daemonize yes \
        --logfile "$PWD/data/redis/redis.log" --pidfile "$PWD/data/redis/redis.pid"
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

# Both run in the background so this shell can act on a signal at once: bash runs a trap only after its foreground
# command ends, so a foreground `serve` would leave SIGTERM to this script unanswered.
.venv/bin/sre-triage worker &
worker=$!
.venv/bin/sre-triage serve &
api=$!
signalled=0
stop() { kill -TERM "$api" "$worker" 2>/dev/null || true; }
trap 'signalled=1; stop' INT TERM
# Either process ending (or a signal) stops the other; the worker lets running jobs finish (WORKER_SHUTDOWN_GRACE_S).
status=0
wait -n "$api" "$worker" || status=$?
stop
wait "$api" "$worker" 2>/dev/null || true
if [ -n "$redis_port" ]; then
    # the Redis this script started goes with it; the queue is on disk (append-only file) for the next start
    redis-cli -p "$redis_port" shutdown >/dev/null 2>&1 || true
fi
echo "sre-triage stopped"
# stopped by a signal: a clean stop; otherwise the exit status of the process that ended first
[ "$signalled" -eq 1 ] && status=0
exit "$status"
