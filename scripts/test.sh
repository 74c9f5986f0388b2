#!/usr/bin/env bash
# Runs incasso's whole test suite on SQLite and PostgreSQL.
#
# On a fresh Debian machine that has only the Rust toolchain, it installs what
# the tests need from Debian's packages (PostgreSQL, xmllint, the tools
# that read printed notices as a scanner does: pdftoppm, pdftotext, zbarimg,
# dmtxread, and Chromium with chromedriver for the portals' browser tests),
# and schemathesis from PyPI in a virtual environment, starts
# PostgreSQL as the `postgres` user, creates a test role, and runs every
# test once per database; then fuzzes the parsers for a few minutes
# (scripts/fuzz.sh, which installs cargo-fuzz with cargo when missing).
# Safe to run again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

need_packages=()
command -v pg_ctlcluster >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_packages+=(postgresql)
command -v xmllint >/dev/null 2>&1 || need_packages+=(libxml2-utils)
command -v pdftoppm >/dev/null 2>&1 || need_packages+=(poppler-utils)
command -v zbarimg >/dev/null 2>&1 || need_packages+=(zbar-tools)
command -v dmtxread >/dev/null 2>&1 || need_packages+=(dmtx-utils)
# The portals' browser tests (crates/server/tests/backoffice_browser.rs) drive
# Debian's Chromium through chromedriver, at these paths.
[ -x /usr/bin/chromium ] || need_packages+=(chromium)
[ -x /usr/bin/chromedriver ] || need_packages+=(chromium-driver)
python3 -c 'import openapi_spec_validator' >/dev/null 2>&1 || need_packages+=(python3-openapi-spec-validator)
/usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_packages+=(python3-venv)
if [ ${#need_packages[@]} -gt 0 ]; then
  echo "==> installing ${need_packages[*]} from Debian's packages"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi

# schemathesis, for the GPD conformance test (crates/server/tests/gpd_conformance.rs):
# the versions of scripts/schemathesis-requirements.txt in a virtual
# environment of Debian's python3 (externally managed: no pip install into
# it), made once under the user's cache, named by the file's hash so that a
# change of versions makes a new one, and reused by every later run.
requirements=scripts/schemathesis-requirements.txt
schemathesis_venv="${XDG_CACHE_HOME:-$HOME/.cache}/incasso/schemathesis-$(sha256sum "$requirements" | cut -c1-12)"
if [ ! -e "$schemathesis_venv/installed" ]; then
  echo "==> installing schemathesis from PyPI in $schemathesis_venv"
  rm -rf "$schemathesis_venv"
  /usr/bin/python3 -m venv "$schemathesis_venv"
  "$schemathesis_venv/bin/pip" install -q --disable-pip-version-check --no-deps -r "$requirements"
  touch "$schemathesis_venv/installed"
fi
export INCASSO_SCHEMATHESIS="$schemathesis_venv/bin/schemathesis"

# PostgreSQL: the packaged cluster, started as the postgres user (initdb and
# the server refuse to run as root).
pg_version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h 2>/dev/null | grep -q "^$pg_version main"; then
  as_root pg_createcluster "$pg_version" main >/dev/null
fi
if ! pg_lsclusters -h | grep -q "^$pg_version main .* online"; then
  echo "==> starting PostgreSQL $pg_version"
  as_root pg_ctlcluster "$pg_version" main start
fi
for _ in $(seq 1 30); do
  as_root su postgres -c "pg_isready -q" && break
  sleep 1
done
as_root su postgres -c "psql -q -v ON_ERROR_STOP=1 -c \"DO \\\$\\\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'incasso_test') THEN
    CREATE ROLE incasso_test LOGIN CREATEDB PASSWORD 'incasso_test';
  END IF; END \\\$\\\$;\"" >/dev/null

export INCASSO_TEST_PG_URL="${INCASSO_TEST_PG_URL:-postgres://incasso_test:incasso_test@127.0.0.1:5432/postgres}"
export INCASSO_REQUIRE_PG=1
# The notice tests fail, rather than skip, without the scanning tools, the
# conformance tests without schemathesis, and the browser tests without
# Chromium and chromedriver.
export INCASSO_REQUIRE_TOOLS=1

# Whatever the tests leave (temporary files, SQLite databases, PostgreSQL
# test databases) is removed when this script ends, failed or not.
test_tmp=$(mktemp -d "${TMPDIR:-/tmp}/incasso-tests.XXXXXX")
cleanup() {
  rm -rf "$test_tmp"
  as_root su postgres -c "psql -qAt -c \"SELECT datname FROM pg_database WHERE datname LIKE 'incasso\\_test\\_%'\"" 2>/dev/null |
    while read -r db; do
      as_root su postgres -c "psql -q -c 'DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)'" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT
export TMPDIR="$test_tmp"

# A failing test's message is what a reader of the log needs; a backtrace
# of every panic buries it. INCASSO_TEST_BACKTRACE=1 brings them back.
export RUST_BACKTRACE="${INCASSO_TEST_BACKTRACE:-0}"

# rustc's incremental caches doubled the size of target/ (2.8 GB of 12 GB
# before the test binaries were merged) and a one-shot run gains nothing from
# them; cargo still rebuilds only the crates that changed.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "==> cargo test (SQLite and PostgreSQL)"
cargo test --workspace "$@"

# The parsers of outside input, fuzzed for a bounded time from the kept
# corpus (docs/TESTING.md); installs cargo-fuzz when missing.
echo "==> fuzzing (scripts/fuzz.sh)"
./scripts/fuzz.sh "${INCASSO_FUZZ_SECONDS:-20}"
