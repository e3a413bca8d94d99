#!/usr/bin/env bash
# Idempotent setup for a fresh Debian machine (root): the native binaries the stack and tests use, the npm
# dependencies, and the shared Redis on 127.0.0.1:6379. Fast no-op when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A deb=(
  [redis-server]=redis-server
  [promtool]=prometheus
  [prometheus]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [amtool]=prometheus-alertmanager
  [prometheus-redis-exporter]=prometheus-redis-exporter
  [wrk]=wrk
  # The console's browser test drives Debian's Chromium through playwright-core, which never downloads a browser.
  [chromium]=chromium
  # npm run chaos puts Redis in its own network namespace (ip netns + a veth pair) to partition the workers.
  [ip]=iproute2
)
missing=()
for bin in "${!deb[@]}"; do command -v "$bin" >/dev/null 2>&1 || missing+=("${deb[$bin]}"); done
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "setup: installing Debian packages: $pkgs"
  if [ "$(id -u)" -ne 0 ]; then echo "setup: run as root (apt-get install -y $pkgs)" >&2; exit 1; fi
  apt-get update -qq
  # Packages must not start their own daemons here: the stack starts its own on chosen ports.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "setup: starting the shared Redis on 127.0.0.1:6379"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
