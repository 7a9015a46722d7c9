#!/usr/bin/env bash
# Install what `make run` and `make test` need on a fresh Debian bookworm (or
# Ubuntu) machine: the servers from Debian's packages and a virtualenv with the
# project. Safe to run again: it only installs what is missing.
set -euo pipefail

cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

# Debian packages, by the file each one provides.
declare -A NEEDED=(
    [/usr/lib/postgresql/15/bin/postgres]=postgresql-15
    [/usr/bin/psql]=postgresql-client-15
    [/usr/sbin/haproxy]=haproxy
    [/usr/sbin/nginx]=nginx-light
    [/usr/bin/memcached]=memcached
    [/usr/bin/python3]=python3
    [/usr/lib/python3.11/venv/__init__.py]=python3.11-venv
    [/usr/sbin/runuser]=util-linux
    [/usr/lib/rabbitmq/bin/rabbitmq-server]=rabbitmq-server
    # The browser test (tests/integration/test_browser.py) drives it with Playwright.
    [/usr/bin/chromium]=chromium
)
missing=()
for path in "${!NEEDED[@]}"; do
    [ -e "$path" ] || missing+=("${NEEDED[$path]}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    $SUDO apt-get update -q
    # policy-rc.d keeps Debian from starting the packaged services on their
    # default ports; scalestack runs its own instances under supervisord.
    echo 'exit 101' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
    $SUDO rm -f /usr/sbin/policy-rc.d
fi

# The project's virtualenv, on Debian's Python 3.11.
PYTHON=/usr/bin/python3
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements/constraints.txt -nt "$stamp" ]; then
    echo "bootstrap: installing the project into .venv"
    .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
    .venv/bin/pip install -q --disable-pip-version-check -c requirements/constraints.txt -e '.[test]'
    touch "$stamp"
fi
