#!/usr/bin/env bash
# Vendor the parts of Bootstrap Italia (npm package `bootstrap-italia`,
# BSD-3-Clause) that the server-rendered portals use into
# crates/server/assets/bootstrap-italia/, so the server can embed them and a
# fresh machine needs nothing but cargo.
#
# Usage: scripts/vendor-bootstrap-italia.sh [VERSION]   (default 2.18.3)
#
# Needs npm (only to run this script, never to build). The destination folder
# is rebuilt from scratch, so files a new version no longer has disappear.
set -euo pipefail

VERSION="${1:-2.18.3}"
PKG=bootstrap-italia
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/crates/server/assets/bootstrap-italia"

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
D="$P/dist"

GOT="$(sed -nE 's/^[[:space:]]*"version":[[:space:]]*"([^"]+)".*/\1/p' "$P/package.json" | head -n1)"
[[ "$GOT" == "$VERSION" ]] || { echo "tarball is version '$GOT', expected '$VERSION'" >&2; exit 1; }

CSS="$D/css/bootstrap-italia.min.css"
JS="$D/js/bootstrap-italia.bundle.min.js"
SPRITES="$D/svg/sprites.svg"
for f in "$CSS" "$JS" "$SPRITES" "$P/LICENSE"; do
  [[ -f "$f" ]] || { echo "missing in the package: ${f#"$P"/}" >&2; exit 1; }
done

OUT="$TMP/out"
mkdir -p "$OUT/css" "$OUT/js" "$OUT/svg" "$OUT/fonts"

# Copy a css/js file, dropping whole-line source-map comments
# (`/*# sourceMappingURL=... */`, `//# sourceMappingURL=...`) so browsers do
# not ask for .map files we do not ship.
strip_maps() {
  sed -E '/^[[:space:]]*(\/\*[#@][[:space:]]*sourceMappingURL=.*\*\/|\/\/[#@][[:space:]]*sourceMappingURL=.*)[[:space:]]*$/d' "$1" >"$2"
  if grep -qE '[#@][[:space:]]*sourceMappingURL=' "$2"; then
    echo "warning: ${2#"$OUT"/} still mentions sourceMappingURL (not on a line of its own); check it by hand" >&2
  fi
}
strip_maps "$CSS" "$OUT/css/bootstrap-italia.min.css"
strip_maps "$JS" "$OUT/js/bootstrap-italia.bundle.min.js"
cp "$SPRITES" "$OUT/svg/sprites.svg"
cp "$P/LICENSE" "$OUT/LICENSE"

# The CSS must not point at files we do not ship: everything in url() should be
# an inline data: URI (true for 2.x). Warn otherwise.
if grep -oE 'url\([^)]*\)' "$CSS" | grep -vE "^url\([\"']?data:" | grep -q .; then
  echo "warning: the CSS references external files that are not vendored:" >&2
  grep -oE 'url\([^)]*\)' "$CSS" | grep -vE "^url\([\"']?data:" | sort -u >&2
fi

# Fonts. In 2.x the CSS names the families ("Titillium Web", "Roboto Mono",
# "Lora") but has no @font-face for them: the bundle's loadFonts(path) injects
# the @font-face rules at run time, each listing eot, woff2, woff, ttf and svg.
# Collect every dist/fonts file that the CSS or the JS references and, per
# face, keep one format: woff2 if referenced (every browser the portals
# support takes it), else woff, else ttf/otf.
declare -A FORMATS=()
while IFS= read -r ref; do
  stem="${ref%.*}"
  ext="${ref##*.}"
  [[ -f "$D/fonts/$ref" ]] || continue
  FORMATS[$stem]+=" $ext"
done < <(grep -ohE '[A-Za-z0-9_]+/[A-Za-z0-9_.-]+\.(woff2|woff|ttf|otf)' "$CSS" "$JS" | sort -u)

(( ${#FORMATS[@]} > 0 )) || { echo "no font references found in the CSS or JS; check how $VERSION loads its fonts" >&2; exit 1; }

for stem in "${!FORMATS[@]}"; do
  pick=""
  for ext in woff2 woff ttf otf; do
    if [[ " ${FORMATS[$stem]} " == *" $ext "* ]]; then pick="$ext"; break; fi
  done
  family="${stem%%/*}"
  mkdir -p "$OUT/fonts/$family"
  cp "$D/fonts/$stem.$pick" "$OUT/fonts/$family/"
done

# Each font family ships its own licence (SIL OFL 1.1 / Apache 2.0), which must
# travel with the font files.
for dir in "$OUT"/fonts/*/; do
  family="$(basename "$dir")"
  found=0
  for lic in "$D/fonts/$family"/{OFL,LICENSE,LICENCE,COPYING}*; do
    [[ -f "$lic" ]] || continue
    cp "$lic" "$dir"
    found=1
  done
  (( found )) || echo "warning: no licence file found for font family $family" >&2
done

INTEGRITY="$(cd "$TMP" && npm view "$PKG@$VERSION" dist.integrity 2>/dev/null || true)"
{
  echo "package=$PKG"
  echo "version=$VERSION"
  echo "tarball=$(basename "$TARBALL")"
  echo "sha256=$SHA256"
  [[ -n "$INTEGRITY" ]] && echo "npm-integrity=$INTEGRITY"
} >"$OUT/VERSION"

find "$OUT" -type d -exec chmod 755 {} +
find "$OUT" -type f -exec chmod 644 {} +

rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$OUT" "$DEST"

echo "Vendored $PKG@$VERSION (sha256 $SHA256) into ${DEST#"$ROOT"/}:"
(cd "$DEST" && find . -type f -printf '%10s  %P\n' | sort -k2)
echo "total: $(find "$DEST" -type f -printf '%s\n' | awk '{s+=$1} END {print s}') bytes"
