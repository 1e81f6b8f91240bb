#!/usr/bin/env bash
# The container image, built and run for real on a machine without Docker
# and without a registry (issue #24): Debian's podman, buildah, runc and
# mmdebstrap.
#
#   scripts/image.sh build   the base, then the image; prints its size
#   scripts/image.sh smoke   build, then run it: as uid 65532 without a shell,
#                            --help, --check-config, --dev answering a sample
#                            delivery on a published port, SIGTERM drain,
#                            all with a read-only root filesystem
#   scripts/image.sh play    build, then `podman kube play` the kustomize example
#                            overlay and the Helm chart (defaults) against the
#                            broker KAFKA_BOOTSTRAP_SERVERS names (scripts/lib/kube-play.sh)
#
# The base: mmdebstrap --variant=extract of the Debian release the
# production base (distroless/cc-debian12) is made from, with the same
# libraries (libc6, libgcc-s1, libssl3), CA certificates, tzdata and
# netbase, a passwd with nonroot (65532), a 1777 /tmp and no docs — a
# distroless/cc-like root filesystem of about 25 MB — imported as
# localhost/popbill-bridge-base:bookworm. The image: deploy/Dockerfile's
# run-prebuilt target FROM that base, with the release binary cargo builds
# here (zlib static by .cargo/config.toml), tagged localhost/popbill-bridge:dev.
#
# In this sandbox podman needs runc (crun refuses its cgroups) and explicit
# nofile/nproc ulimits (it cannot raise them): both come from a
# containers.conf of the script's own, named by CONTAINERS_CONF.
#
# Environment: IMAGE (localhost/popbill-bridge:dev), IMAGE_STATE (state
# directory, ${TMPDIR:-/tmp}/popbill-image).
set -euo pipefail
cd "$(dirname "$0")/.."

image="${IMAGE:-localhost/popbill-bridge:dev}"
base="localhost/popbill-bridge-base:bookworm"
state="${IMAGE_STATE:-${TMPDIR:-/tmp}/popbill-image}"
mkdir -p "$state"

say() { echo "image.sh: $*" >&2; }

need_tools() {
  local missing=()
  for t in podman buildah runc mmdebstrap; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian's ${missing[*]} (and what podman needs beside)"
    { apt-get install -y -qq podman buildah runc mmdebstrap uidmap fuse-overlayfs ||
      { apt-get update -qq && apt-get install -y -qq podman buildah runc mmdebstrap uidmap fuse-overlayfs; }; } >/dev/null
  fi
  # The sandbox cannot raise its limits: ask for what it has, at most
  # 65536 files and 4096 processes.
  local nofile nproc
  nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
  nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ] && nproc=4096
  cat >"$state/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  export CONTAINERS_CONF="$state/containers.conf"
}

build_base() {
  if podman image exists "$base"; then
    say "base $base already imported"
    return
  fi
  say "making the distroless-like base with mmdebstrap (Debian bookworm)"
  local tar="$state/base.tar"
  # shellcheck disable=SC2016 # the hooks' $1 is mmdebstrap's root directory
  mmdebstrap --quiet --variant=extract --mode=root \
    --include=libc6,libgcc-s1,libssl3,ca-certificates,base-files,netbase,tzdata \
    --customize-hook='cat "$1"/usr/share/ca-certificates/mozilla/*.crt > "$1"/etc/ssl/certs/ca-certificates.crt' \
    --customize-hook='printf "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n" > "$1"/etc/passwd' \
    --customize-hook='printf "root:x:0:\nnonroot:x:65532:\n" > "$1"/etc/group' \
    --customize-hook='mkdir -p "$1"/home/nonroot "$1"/tmp && chmod 1777 "$1"/tmp && chown 65532:65532 "$1"/home/nonroot' \
    --customize-hook='rm -rf "$1"/usr/share/doc "$1"/usr/share/man "$1"/usr/share/info "$1"/usr/share/lintian "$1"/var/cache/apt "$1"/var/lib/apt/lists' \
    --customize-hook='rm -f "$1"/bin/sh "$1"/usr/bin/sh "$1"/bin/bash "$1"/usr/bin/bash "$1"/bin/dash "$1"/usr/bin/dash' \
    bookworm "$tar" >&2
  podman import "$tar" "$base" >/dev/null
  rm -f "$tar"
}

build_image() {
  say "building the release binary"
  cargo build --release --locked --quiet -p popbill-bridge --bin popbill-bridge
  local ctx="$state/context"
  rm -rf "$ctx" && mkdir -p "$ctx/target/release" "$ctx/config"
  cp target/release/popbill-bridge "$ctx/target/release/"
  strip "$ctx/target/release/popbill-bridge"
  cp config/popbill-bridge.toml "$ctx/config/"
  say "building $image (deploy/Dockerfile, target run-prebuilt, FROM $base)"
  podman build --quiet --pull=never --build-arg RUN_IMAGE="$base" \
    --target run-prebuilt -f deploy/Dockerfile -t "$image" "$ctx" >/dev/null
  local size
  size=$(podman image inspect --format '{{.Size}}' "$image")
  say "$image: $((size / 1000 / 1000)) MB ($size bytes)"
  echo "$size"
}

# How long each step took, for the suite's log.
step_started=$SECONDS
took() { say "$1 in $((SECONDS - step_started)) s"; step_started=$SECONDS; }

# Every command starts from the image: the tools, the base, the image.
image_ready() {
  need_tools
  took "tools ready"
  build_base
  took "base ready"
  build_image >/dev/null
  took "image built"
}

case "${1:-build}" in
  build)
    image_ready
    ;;
  smoke)
    image_ready
    IMAGE="$image" CONTAINERS_CONF="$CONTAINERS_CONF" scripts/lib/image-smoke.sh
    took "smoke test done"
    ;;
  play)
    image_ready
    IMAGE="$image" CONTAINERS_CONF="$CONTAINERS_CONF" scripts/lib/kube-play.sh
    took "manifests played"
    ;;
  *)
    echo "usage: scripts/image.sh build|smoke|play" >&2
    exit 2
    ;;
esac
