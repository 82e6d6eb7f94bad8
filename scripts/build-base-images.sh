#!/usr/bin/env bash
# Build the base images that the Dockerfiles under containers/ start FROM, without any registry.
#
# hpcflow itself builds each containers/<name>/ context at run time (tagged by the context's content
# hash); it cannot `docker pull` a base image on a machine that reaches no registry, so this script
# makes those bases locally, from Debian's package mirror, once per machine.
#
# Idempotent: an image whose tag already exists is skipped (one `docker image inspect` per image).
# Concurrent invocations serialise on a lock file (flock). Root on a fresh Debian 12 machine: installs
# mmdebstrap with apt-get when missing, and starts a Docker engine via scripts/ensure-docker.sh.
#
# To add an image, add ONE line to BASE_IMAGES below (lines are built in order):
#   "<tag> mmdebstrap <suite> <variant>"   a Debian root filesystem made by mmdebstrap, `docker import`ed
#
# Env:
#   HPCFLOW_DEBIAN_MIRROR   Debian mirror URL (default http://deb.debian.org/debian)
#   HPCFLOW_DEBIAN_SECURITY security mirror URL (default http://deb.debian.org/debian-security)
set -euo pipefail

BASE_IMAGES=(
  "hpcflow/debian:bookworm mmdebstrap bookworm minbase"
)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mirror="${HPCFLOW_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${HPCFLOW_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"

say() { printf 'build-base-images: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

bash "$repo_root/scripts/ensure-docker.sh" || die "no Docker engine (scripts/ensure-docker.sh failed)"

exec 9>"${TMPDIR:-/tmp}/hpcflow-build-base-images.lock"
flock 9

image_present() { docker image inspect "$1" >/dev/null 2>&1; }

ensure_mmdebstrap() {
  command -v mmdebstrap >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || die "mmdebstrap is not installed and this script is not root: apt-get install mmdebstrap"
  say "installing mmdebstrap"
  local log
  log="$(mktemp "${TMPDIR:-/tmp}/hpcflow-apt.XXXXXX.log")"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
      apt-get install -y -qq --no-install-recommends mmdebstrap; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "could not install mmdebstrap with apt-get (is Debian's mirror reachable?); log: $log"
  fi
  rm -f "$log"
}

# mmdebstrap writes a root filesystem as a tarball to stdout; `docker import` turns it into an image.
# The import goes to a temporary tag that is only renamed to the real one when both sides succeeded,
# so a download that fails halfway never leaves a truncated image under the real tag (which the
# skip-if-present check would then trust forever).
build_mmdebstrap() {
  local tag="$1" suite="$2" variant="$3" tmp_tag log
  ensure_mmdebstrap
  tmp_tag="${tag%%:*}:partial-$$"
  # mmdebstrap's progress (and its hooks' apt/dpkg chatter) goes to a log, shown only on failure.
  log="$(mktemp "${TMPDIR:-/tmp}/hpcflow-mmdebstrap.XXXXXX.log")"
  # Sources of the image: the release plus its updates and security suites, so `apt-get install`
  # in a Dockerfile gets the release's packages with their security fixes.
  local -a sources=(
    "deb $mirror $suite main"
    "deb $mirror $suite-updates main"
    "deb $security_mirror $suite-security main"
  )
  # The merged-usr hook sets up the merged /usr layout itself (and installs usr-is-merged), so the
  # usrmerge package and the full perl it pulls in (~60 MB) stay out of the image.
  # --dpkgopt lines are kept in the image (/etc/dpkg/dpkg.cfg.d/), so the packages a Dockerfile
  # installs later are slim too: no man pages, info or translations; licences stay.
  if ! mmdebstrap --quiet --variant="$variant" --mode=root --format=tar \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      "$suite" - "${sources[@]}" </dev/null 2>"$log" \
    | docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["bash"]' \
      - "$tmp_tag" >/dev/null; then
    docker image rm "$tmp_tag" >/dev/null 2>&1 || true
    say "last lines of the mmdebstrap log ($log):"
    tail -n 40 "$log" >&2 || true
    die "could not build $tag: mmdebstrap $suite ($variant) from $mirror, or docker import, failed (see above)"
  fi
  rm -f "$log"
  # A sanity check before the image gets its real name: it must start and have apt.
  if ! docker run --rm --network none "$tmp_tag" sh -c 'command -v apt-get >/dev/null && test -s /etc/os-release'; then
    docker image rm "$tmp_tag" >/dev/null 2>&1 || true
    die "$tag was imported but does not run (no shell or no apt-get inside)"
  fi
  docker tag "$tmp_tag" "$tag"
  docker image rm "$tmp_tag" >/dev/null
}

for entry in "${BASE_IMAGES[@]}"; do
  read -r tag kind suite variant <<<"$entry"
  if image_present "$tag"; then
    continue
  fi
  say "building $tag ($kind $suite $variant)"
  t0=$SECONDS
  case "$kind" in
    mmdebstrap) build_mmdebstrap "$tag" "$suite" "$variant" ;;
    *) die "unknown image kind '$kind' for $tag" ;;
  esac
  image_present "$tag" || die "$tag was not created"
  say "built $tag in $((SECONDS - t0)) s ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
done
