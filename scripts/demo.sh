#!/usr/bin/env bash
# The repository's main job, on a fresh Debian 12 machine as root (with Node 20 and npm):
# install, build hpcflow, start a Docker engine, build the base images, then run the repository's
# own pipelines (this repository is an hpcflow workspace: pipelines/, containers/, kernels/,
# params.yaml) and show that a second look finds everything up to date.
#
#   bash scripts/demo.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step_no=0
step() {
  step_no=$((step_no + 1))
  printf '\n==> [%d] %s\n' "$step_no" "$*"
}
on_exit() {
  local rc=$?
  [ "$rc" -eq 0 ] || printf '\ndemo: FAILED in step %d (exit %d)\n' "$step_no" "$rc" >&2
}
trap on_exit EXIT

step "install dependencies (npm ci)"
npm ci --no-audit --no-fund

step "build hpcflow (npm run build)"
npm run build

step "start a Docker engine if none answers (scripts/ensure-docker.sh)"
bash scripts/ensure-docker.sh

step "build the base images the containers/ Dockerfiles start FROM (scripts/build-base-images.sh)"
bash scripts/build-base-images.sh

OFFLINE=(--matrix impl=openmp --matrix lang=python)

step "the demo pipeline, pipelines/heat.yaml (hpcflow dag)"
node bin/hpcflow.js dag

step "what would run, and why (hpcflow status)"
node bin/hpcflow.js status

step "run everything: where the Chapel and Julia images cannot be obtained, hpcflow names them and starts nothing"
set +e
node bin/hpcflow.js run
rc=$?
set -e
if [ "$rc" -eq 4 ]; then
  # 4 = an image cannot be obtained (the message above says which, and how to provide it).
  step "run the implementations available offline: C/OpenMP solvers, Python analysis (hpcflow run ${OFFLINE[*]})"
  node bin/hpcflow.js run "${OFFLINE[@]}"
  report=reports/heat/python/report.md
elif [ "$rc" -ne 0 ]; then
  exit "$rc"
else
  report=reports/heat/julia/report.md
fi

step "again: everything is up to date (hpcflow status)"
node bin/hpcflow.js status "${OFFLINE[@]}"

step "the report ($report)"
cat "$report"

printf '\ndemo: done\n'
