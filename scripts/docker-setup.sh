#!/usr/bin/env bash
# Make this machine able to build and run the compose stack, for
# `make test-compose` (and `make compose-up`). Safe to run again.
#
# 1. Installs Debian's docker.io and docker-compose (1.29) when no Docker is
#    present, and starts dockerd when no engine answers.
# 2. Makes sure debian:bookworm-slim exists: pulled where a registry answers,
#    built with debootstrap where none does (docker/build-base-image.sh).
# 3. Behind a TLS-intercepting proxy, pip in the image build must trust the
#    proxy's CA: with SCALESTACK_EXTRA_CA=/path/to/bundle.crt (the test passes
#    the host's /etc/ssl/certs/ca-certificates.crt) it is copied into
#    docker/extra-ca/, which git ignores; it is never committed.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

# Debian's engine and CLI first on PATH: a machine may carry another docker
# CLI elsewhere, and docker-compose talks to the engine's socket itself.
export PATH=/usr/bin:/usr/sbin:$PATH

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
    missing+=(docker-compose)
fi
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    echo "docker-setup: installing ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

if ! docker info >/dev/null 2>&1; then
    echo "docker-setup: starting dockerd (log: var/log/dockerd.log)"
    mkdir -p var/log
    # setsid: the engine outlives this script, like a service would.
    $SUDO setsid dockerd >var/log/dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start:"; tail -20 var/log/dockerd.log; exit 1; }
fi

bash docker/build-base-image.sh

if [ -n "${SCALESTACK_EXTRA_CA:-}" ]; then
    cp "$SCALESTACK_EXTRA_CA" docker/extra-ca/build-extra-ca.crt
fi
