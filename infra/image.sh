#!/usr/bin/env bash
# Build zipfleet's runtime image (the Dockerfile's `runtime` target) from binaries already
# built on the host, tagged zipfleet:local, with podman (or docker when podman is absent).
#
#   cargo build --release --bins && infra/image.sh
#
# Settings (environment):
#   ZIPFLEET_BIN_DIR   where zipfleet, zipfleet-api and zipfleet-worker are (default
#                      target/release). infra/check.sh passes target/debug: infra/test.sh has
#                      just built those (with every dependency at opt-level 3, see Cargo.toml),
#                      and a second, release build would add about 15 minutes to CI for an
#                      image that is only run in a smoke test there.
#   ZIPFLEET_IMAGE     the tag (default zipfleet:local)
#   CONTAINER_ENGINE   podman or docker (default: podman if installed, else docker)
#   ZIPFLEET_IMAGE_BUILD_ARGS  extra arguments for `build` (e.g. --network=host)
#
# The build context is a scratch directory holding only the three binaries, so the image
# does not depend on what else lies in the work tree (and .dockerignore, written for the
# from-source build, which leaves target/ out, does not apply).
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir="${ZIPFLEET_BIN_DIR:-target/release}"
tag="${ZIPFLEET_IMAGE:-zipfleet:local}"
engine="${CONTAINER_ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then engine=podman
  elif command -v docker >/dev/null; then engine=docker
  else echo "image.sh: neither podman nor docker is installed" >&2; exit 1
  fi
fi

for bin in zipfleet zipfleet-api zipfleet-worker; do
  if [ ! -x "$bin_dir/$bin" ]; then
    echo "image.sh: $bin_dir/$bin is missing: run \`cargo build --release --bins\` (or set ZIPFLEET_BIN_DIR)" >&2
    exit 1
  fi
done

context="target/image-context"
rm -rf "$context"
mkdir -p "$context"
for bin in zipfleet zipfleet-api zipfleet-worker; do
  # A copy, not a link: the context must hold the bytes, and strip shrinks the debug
  # binaries (symbols are not needed in the image; the source build strips nothing but has none).
  cp "$bin_dir/$bin" "$context/$bin"
  strip --strip-debug "$context/$bin" 2>/dev/null || true
done

revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | sed -n 1p)"
# shellcheck disable=SC2086 # ZIPFLEET_IMAGE_BUILD_ARGS is a list of words on purpose
"$engine" build --target runtime -f Dockerfile \
  --build-arg BIN_DIR=. --build-arg REVISION="$revision" --build-arg VERSION="${version:-0.1.0}" \
  ${ZIPFLEET_IMAGE_BUILD_ARGS:-} -t "$tag" "$context"
echo "built $tag from $bin_dir with $engine"
