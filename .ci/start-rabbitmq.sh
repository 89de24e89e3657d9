#!/usr/bin/env bash
# Install (if needed) and start a local RabbitMQ broker for integration tests.
#
# Usage (as root, no systemd needed):   bash .ci/start-rabbitmq.sh
#
# Idempotent: if something already listens on 127.0.0.1:5672 and the broker
# answers `rabbitmqctl await_startup`, it returns 0 straight away.
# Exits non-zero with a message if the broker never comes up.
# Env: RABBITMQ_WAIT_SECONDS (default 120).
set -euo pipefail

WAIT_SECONDS="${RABBITMQ_WAIT_SECONDS:-120}"
HOST=127.0.0.1
PORT=5672

log() { echo "[start-rabbitmq] $*" >&2; }

port_open() {
    # bash /dev/tcp probe, no extra tools needed
    (exec 3<>"/dev/tcp/${HOST}/${PORT}") 2>/dev/null
}

broker_ready() {
    port_open && timeout 30 rabbitmqctl await_startup --timeout 25 >/dev/null 2>&1
}

if command -v rabbitmqctl >/dev/null 2>&1 && broker_ready; then
    log "RabbitMQ already running on ${HOST}:${PORT}"
    exit 0
fi

if ! command -v rabbitmq-server >/dev/null 2>&1; then
    log "installing rabbitmq-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends rabbitmq-server
fi

# The Debian package may try to start the service via invoke-rc.d; without
# systemd/init that normally does nothing, so start it ourselves unless a
# node is already up (port closed but node starting, for instance).
if ! port_open; then
    if timeout 10 rabbitmqctl ping >/dev/null 2>&1; then
        log "RabbitMQ node is up but not listening yet; waiting"
    else
        log "starting rabbitmq-server -detached"
        rabbitmq-server -detached
    fi
fi

log "waiting up to ${WAIT_SECONDS}s for ${HOST}:${PORT}"
deadline=$((SECONDS + WAIT_SECONDS))
until port_open; do
    if ((SECONDS >= deadline)); then
        log "ERROR: RabbitMQ did not start listening on ${HOST}:${PORT} within ${WAIT_SECONDS}s"
        tail -n 50 /var/log/rabbitmq/*.log 2>/dev/null >&2 || true
        exit 1
    fi
    sleep 1
done

# The listener opens before the boot steps that create the guest user have
# necessarily finished; await_startup blocks until the node is fully booted.
remaining=$((deadline - SECONDS))
((remaining < 10)) && remaining=10
if ! timeout "$((remaining + 5))" rabbitmqctl await_startup --timeout "$remaining" >/dev/null; then
    log "ERROR: rabbitmqctl await_startup failed; RabbitMQ is not fully started"
    tail -n 50 /var/log/rabbitmq/*.log 2>/dev/null >&2 || true
    exit 1
fi

log "RabbitMQ is up: $(rabbitmqctl version 2>/dev/null || echo unknown version)"
