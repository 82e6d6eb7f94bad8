#!/usr/bin/env bash
# Build the images the test suite needs, without any registry, once per machine.
# Images already present (by tag) are skipped, so running this again costs one `docker image inspect`
# per image. Concurrent invocations serialise on a lock file.
#
# To add an image, add ONE line to TEST_IMAGES below:
#   "<tag> rootfs-busybox"            a busybox-static root filesystem, `docker import`ed
#   "<tag> dockerfile <dir>"          `docker build --network host` of <dir> (repo-relative),
#                                     e.g. a Dockerfile `FROM hpcflow-test/busybox:1` (list it after
#                                     the images it builds on: lines are built in order)
set -euo pipefail

TEST_IMAGES=(
  "hpcflow-test/busybox:1 rootfs-busybox"
)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'build-test-images: %s\n' "$*" >&2; }

"$repo_root/scripts/ensure-docker.sh"

exec 9>"${TMPDIR:-/tmp}/hpcflow-build-test-images.lock"
flock 9

image_present() { docker image inspect "$1" >/dev/null 2>&1; }

find_busybox() {
  local candidate
  for candidate in /bin/busybox /usr/bin/busybox; do
    # Only a static busybox works inside an image that has no libc.
    if [ -x "$candidate" ] && ! ldd "$candidate" >/dev/null 2>&1; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  return 1
}

build_rootfs_busybox() {
  local tag="$1" busybox rootfs applet
  if ! busybox="$(find_busybox)"; then
    say "installing busybox-static"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
    busybox="$(find_busybox)" || { say "ERROR: no static busybox after installing busybox-static"; return 1; }
  fi
  rootfs="$(mktemp -d "${TMPDIR:-/tmp}/hpcflow-rootfs.XXXXXX")"
  # shellcheck disable=SC2064 # expand now: the variable is local
  trap "rm -rf '$rootfs'; trap - RETURN" RETURN
  mkdir -p "$rootfs"/{bin,etc,root,home,dev,proc,sys,var,usr/bin} "$rootfs/tmp"
  chmod 1777 "$rootfs/tmp"
  chmod 700 "$rootfs/root"
  cp "$busybox" "$rootfs/bin/busybox"
  for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
  done
  ln -sf busybox "$rootfs/bin/sh"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -c . \
    | docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["/bin/sh"]' \
      - "$tag" >/dev/null
}

build_dockerfile() {
  local tag="$1" dir="$2"
  docker build --quiet --network host -t "$tag" "$repo_root/$dir" >/dev/null
}

for entry in "${TEST_IMAGES[@]}"; do
  read -r tag kind arg <<<"$entry"
  if image_present "$tag"; then
    continue
  fi
  say "building $tag ($kind${arg:+ $arg})"
  case "$kind" in
    rootfs-busybox) build_rootfs_busybox "$tag" ;;
    dockerfile) build_dockerfile "$tag" "$arg" ;;
    *) say "ERROR: unknown image kind '$kind' for $tag"; exit 1 ;;
  esac
  image_present "$tag" || { say "ERROR: $tag was not created"; exit 1; }
done
