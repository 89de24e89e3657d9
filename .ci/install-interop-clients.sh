#!/usr/bin/env bash
# Install the toolchains and AMQP clients that tests/interop/test_clients.py runs:
# Java (RabbitMQ Java client), Go (amqp091-go, built offline from the Debian source package),
# Ruby (Bunny), rabbitmq-c's command-line tools, and Node.js with amqplib from npm.
# The Python clients (aio-pika, amqpstorm, kombu, pika, py-amqp) come with `pip install '.[test]'`.
#
# Usage (as root): bash .ci/install-interop-clients.sh
# Idempotent; apt-get runs only when a package is missing. Exits non-zero if anything
# cannot be installed: CI then fails rather than skipping a client.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[install-interop-clients] $*" >&2; }

packages=(
    default-jdk-headless librabbitmq-client-java libslf4j-java
    golang-go golang-github-rabbitmq-amqp091-go-dev
    ruby-bunny
    amqp-tools
)
# Node.js 18 or newer with npm; a nodejs from elsewhere (e.g. NodeSource) already brings npm.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # slim Debian images drop /usr/share/man, and the JDK's postinst fails without man1
    mkdir -p /usr/share/man/man1
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    log "apt packages already installed"
fi

log "npm install (amqplib, pinned in tests/interop/clients/package.json)"
(cd tests/interop/clients && npm install --no-package-lock --no-audit --no-fund --loglevel=error)

for tool in java javac go ruby node amqp-declare-queue amqp-publish amqp-consume amqp-get; do
    command -v "$tool" >/dev/null || { log "ERROR: $tool is not on PATH"; exit 1; }
done
test -f /usr/share/java/amqp-client.jar
test -d /usr/share/gocode/src/github.com/rabbitmq/amqp091-go
ruby -e 'require "bunny"'
node -e 'require("./tests/interop/clients/node_modules/amqplib")'
log "ok: $(java -version 2>&1 | head -1); $(go version); ruby $(ruby -e 'print RUBY_VERSION'); node $(node --version)"
