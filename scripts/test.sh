#!/usr/bin/env bash
# Run the test suite on a fresh Debian/Ubuntu machine: installs the servers the tests start (Redis, Prometheus,
# Alertmanager, Chromium) when it can, builds the locked Python environment, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-env.sh
ensure_system_packages redis-server:redis-server prometheus:prometheus promtool:prometheus \
    prometheus-alertmanager:prometheus-alertmanager chromium:chromium
ensure_python_env
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
# 5 = no tests collected (for example a -k filter that matched nothing): that is a failure of the command.
exit $status
