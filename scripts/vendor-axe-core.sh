#!/usr/bin/env bash
# Vendor axe-core (npm package `axe-core`, MPL-2.0), the accessibility engine
# the browser tests inject into each page (crates/server/tests/backoffice_browser.rs),
# into crates/server/tests/data/axe/: axe.min.js, its LICENSE, and a VERSION
# file naming the tarball and its hash. Only the tests read it; nothing is
# served or built from it.
#
# Usage: scripts/vendor-axe-core.sh [VERSION]   (default 4.14.1; `4` takes
#        the newest 4.x, the line the tests' axe.run call is written for)
#
# Needs npm (only to run this script, never to build or test). The
# destination folder is rebuilt from scratch.
set -euo pipefail

VERSION="${1:-4.14.1}"
PKG=axe-core
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/crates/server/tests/data/axe"

command -v npm >/dev/null || { echo "npm is required to refresh the vendored files" >&2; exit 1; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "Fetching $PKG@$VERSION from the npm registry..."
(cd "$TMP" && npm pack "$PKG@$VERSION" --ignore-scripts --silent >/dev/null)
TARBALL="$(find "$TMP" -maxdepth 1 -name "$PKG-*.tgz" -print -quit)"
[[ -n "$TARBALL" ]] || { echo "npm pack produced no tarball" >&2; exit 1; }
SHA256="$(sha256sum "$TARBALL" | cut -d' ' -f1)"

tar -xzf "$TARBALL" -C "$TMP"
P="$TMP/package"

GOT="$(sed -nE 's/^[[:space:]]*"version":[[:space:]]*"([^"]+)".*/\1/p' "$P/package.json" | head -n1)"
case "$VERSION" in
  *.*.*) [[ "$GOT" == "$VERSION" ]] || { echo "tarball is version '$GOT', expected '$VERSION'" >&2; exit 1; } ;;
  *) [[ "$GOT" == "$VERSION".* ]] || { echo "tarball is version '$GOT', expected $VERSION.x" >&2; exit 1; } ;;
esac
[[ "$GOT" == 4.* ]] || echo "warning: axe-core $GOT is not 4.x; the tests' axe.run call was written for 4.x" >&2

for f in axe.min.js LICENSE; do
  [[ -f "$P/$f" ]] || { echo "missing in the package: $f" >&2; exit 1; }
done

OUT="$TMP/out"
mkdir -p "$OUT"
cp "$P/axe.min.js" "$P/LICENSE" "$OUT/"

INTEGRITY="$(cd "$TMP" && npm view "$PKG@$GOT" dist.integrity 2>/dev/null || true)"
{
  echo "package=$PKG"
  echo "version=$GOT"
  echo "tarball=$(basename "$TARBALL")"
  echo "sha256=$SHA256"
  [[ -n "$INTEGRITY" ]] && echo "npm-integrity=$INTEGRITY"
} >"$OUT/VERSION"

chmod 755 "$OUT"
find "$OUT" -type f -exec chmod 644 {} +

rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$OUT" "$DEST"

echo "Vendored $PKG@$GOT (sha256 $SHA256) into ${DEST#"$ROOT"/}:"
(cd "$DEST" && find . -type f -printf '%10s  %P\n' | sort -k2)
