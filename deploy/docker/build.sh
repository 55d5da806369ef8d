#!/usr/bin/env bash
# Builds the atrd image (deploy/docker/Dockerfile) from this checkout: a static atrd
# (gnu target + crt-static, as the testnet's image), then `docker build` FROM scratch.
# Usage: deploy/docker/build.sh [TAG]   (default atrd:latest)
set -euo pipefail
tag="${1:-atrd:latest}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && RUSTFLAGS='-C target-feature=+crt-static -C strip=symbols' \
    cargo build --release --locked --target x86_64-unknown-linux-gnu -p atrd --bin atrd)
bin="$target_dir/x86_64-unknown-linux-gnu/release/atrd"
if ldd "$bin" >/dev/null 2>&1 && ! ldd "$bin" 2>&1 | grep -q 'statically linked'; then
    echo "build.sh: $bin is not statically linked" >&2
    exit 1
fi
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/atrd"
mkdir "$ctx/data"
cp "$root/deploy/docker/Dockerfile" "$ctx/Dockerfile"
docker build --quiet -t "$tag" "$ctx"
echo "built $tag"
