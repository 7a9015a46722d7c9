#!/usr/bin/env bash
# Build debian:bookworm-slim locally when no image registry can be reached.
#
# The compose images all start FROM debian:bookworm-slim. Where `docker pull`
# works this script does nothing. Where it does not (an air-gapped CI machine,
# a registry blocked by policy), it makes an equivalent image from Debian's own
# packages: debootstrap of bookworm, minbase variant, then `docker import`.
#
# The Debian mirror is the one this machine's apt already uses (or
# $DEBIAN_MIRROR), so the script needs no address of its own.
set -euo pipefail

IMAGE="${BASE_IMAGE:-debian:bookworm-slim}"
SUITE=bookworm

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "base image $IMAGE is present"
    exit 0
fi
if timeout 60 docker pull "$IMAGE" >/dev/null 2>&1; then
    echo "pulled $IMAGE"
    exit 0
fi

mirror="${DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
    # deb822 sources first (bookworm's default), then the one-line format.
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
fi
if [[ -z "$mirror" ]]; then
    mirror=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
if [[ -z "$mirror" ]]; then
    echo "no Debian mirror found in apt's sources; set DEBIAN_MIRROR" >&2
    exit 1
fi
command -v debootstrap >/dev/null || { apt-get update -q && apt-get install -y -q debootstrap; }

root=$(mktemp -d /tmp/scalestack-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "building $IMAGE with debootstrap ($SUITE, minbase)"
debootstrap --variant=minbase "$SUITE" "$root" "$mirror" >/dev/null
# What the official slim image also leaves out: caches and package lists.
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/tmp/*
tar -C "$root" --numeric-owner -c . | docker import \
    --change 'CMD ["bash"]' \
    --change 'ENV LANG=C.UTF-8' \
    - "$IMAGE" >/dev/null
echo "built $IMAGE from $SUITE (debootstrap minbase)"
