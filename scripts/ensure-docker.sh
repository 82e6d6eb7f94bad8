#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine (CI: a fresh Debian 12 machine, run as root).
# Idempotent: exits at once when `docker info` already works.
#   1. engine reachable                     -> exit 0
#   2. dockerd missing                      -> apt-get install docker.io (Debian's engine)
#   3. start dockerd detached, poll `docker info` for up to HPCFLOW_DOCKERD_WAIT_SEC (30) seconds
# Env: HPCFLOW_DOCKERD_LOG (default /tmp/hpcflow-dockerd.log), HPCFLOW_DOCKERD_WAIT_SEC (default 30).
set -euo pipefail

log_file="${HPCFLOW_DOCKERD_LOG:-/tmp/hpcflow-dockerd.log}"
wait_sec="${HPCFLOW_DOCKERD_WAIT_SEC:-30}"

say() { printf 'ensure-docker: %s\n' "$*" >&2; }

engine_up() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_up; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  say "no Docker engine answers and this script is not running as root: cannot install or start dockerd."
  say "start dockerd yourself (or run this script as root)."
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  say "dockerd not found: installing Debian's docker.io"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

# A dockerd may already be starting (another job, or a previous run of this script): only start one
# when none is running, so the script stays idempotent and never races two daemons on one socket.
if ! pgrep -x dockerd >/dev/null 2>&1; then
  say "starting dockerd (log: $log_file)"
  # setsid: the daemon must outlive this shell and not receive the job's SIGINT/SIGHUP.
  setsid dockerd >"$log_file" 2>&1 < /dev/null &
fi

deadline=$((SECONDS + wait_sec))
while [ "$SECONDS" -lt "$deadline" ]; do
  if engine_up; then
    say "engine ready after $((SECONDS))s"
    exit 0
  fi
  sleep 0.5
done

say "ERROR: the Docker engine did not answer \`docker info\` within ${wait_sec}s."
if [ -f "$log_file" ]; then
  say "last lines of $log_file:"
  tail -n 40 "$log_file" >&2 || true
fi
exit 1
