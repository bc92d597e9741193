#!/usr/bin/env bash
# Refresh the vendored TensorFlow.js files in static/vendor/tfjs/ from the npm registry.
#   scripts/vendor_tfjs.sh            the pinned version below
#   TFJS_VERSION=4.22.0 scripts/vendor_tfjs.sh
# The committed files are what the Private check page runs (no CDN, nothing fetched at run time);
# this script is only how they were fetched and how to fetch them again. It needs npm (Node 20+).
# `npm pack` checks each tarball against the registry's integrity hash; the sha256 of every copied
# file goes into VERSIONS so a later refresh shows exactly what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${TFJS_VERSION:-4.22.0}
PACKAGES=(tfjs-core tfjs-backend-cpu tfjs-backend-wasm)
DEST=static/vendor/tfjs

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for package in "${PACKAGES[@]}"; do
  echo "==> npm pack @tensorflow/$package@$VERSION"
  (cd "$work" && npm pack --silent "@tensorflow/$package@$VERSION" >/dev/null)
  mkdir -p "$work/$package"
  tar xzf "$work/tensorflow-$package-$VERSION.tgz" -C "$work/$package"
done

mkdir -p "$DEST"
# The UMD builds (they add to the global `tf`), minified, and the three WebAssembly binaries the wasm
# backend picks from (plain, SIMD, threaded SIMD) by what the browser supports.
scripts=(tfjs-core/package/dist/tf-core.min.js tfjs-backend-cpu/package/dist/tf-backend-cpu.min.js
  tfjs-backend-wasm/package/dist/tf-backend-wasm.min.js)
for script in "${scripts[@]}"; do
  # Only change: the last line, "//# sourceMappingURL=<name>.map", is dropped. The source maps
  # are not shipped (3.4 MB that no page needs), and collectstatic's manifest storage fails on
  # a reference to a file that is not there.
  grep -v '^//# sourceMappingURL=' "$work/$script" >"$DEST/$(basename "$script")"
done
for wasm in tfjs-backend-wasm.wasm tfjs-backend-wasm-simd.wasm tfjs-backend-wasm-threaded-simd.wasm; do
  cp "$work/tfjs-backend-wasm/package/dist/$wasm" "$DEST/"
done
chmod 644 "$DEST"/*

{
  echo "# Vendored TensorFlow.js: written by scripts/vendor_tfjs.sh; do not edit by hand."
  echo "# Fetched with \`npm pack\` from the npm registry (https://registry.npmjs.org/)."
  echo
  for package in "${PACKAGES[@]}"; do
    integrity=$(cd "$work" && npm view "@tensorflow/$package@$VERSION" dist.integrity 2>/dev/null || echo "?")
    echo "@tensorflow/$package $VERSION (Apache-2.0) tarball $integrity"
  done
  echo
  echo "# sha256 of each file as the packages ship it"
  (cd "$work" && for script in "${scripts[@]}"; do
    echo "$(sha256sum "$script" | cut -d' ' -f1)  $(basename "$script") (before dropping its sourceMappingURL line)"
  done)
  echo
  echo "# sha256 of each file here"
  (cd "$DEST" && sha256sum tf-core.min.js tf-backend-cpu.min.js tf-backend-wasm.min.js \
    tfjs-backend-wasm.wasm tfjs-backend-wasm-simd.wasm tfjs-backend-wasm-threaded-simd.wasm)
} >"$DEST/VERSIONS"

[ -f "$DEST/LICENSE" ] || echo "warning: $DEST/LICENSE is missing (the npm tarballs carry none; it is the Apache-2.0 text)" >&2
cat "$DEST/VERSIONS"
