#!/usr/bin/env bash
# Chromium for the real-browser test (tests/browser), called by `make test` / `make browser`.
# Finds it the way the test does (STAGELAB_CHROMIUM, Debian's /usr/bin/chromium, PATH,
# Playwright's own download). With --install (CI, or CHROMIUM_FIX=1) it installs Debian's
# `chromium` package with apt, only as root on Debian, the way `stagelab doctor --fix`
# installs the engine. Otherwise a missing Chromium is an error that names the fix: the
# browser test never skips silently.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-.venv/bin/python}"

found() {
  "$PY" -c 'import sys; sys.path.insert(0, "tests/browser"); from lab_harness import find_chromium; p = find_chromium(); print(p or ""); sys.exit(0 if p else 1)'
}

if path=$(found); then
  echo "[stagelab] Chromium for the browser test: $path"
  exit 0
fi

fix="sudo apt-get install chromium   (Debian; or: make test CHROMIUM_FIX=1 as root)
       elsewhere: STAGELAB_CHROMIUM=/path/to/chromium, or .venv/bin/python -m playwright install chromium"
if [ "${1:-}" != "--install" ]; then
  echo "✗ Chromium not found: the browser test (tests/browser) needs it." >&2
  echo "  fix: $fix" >&2
  exit 1
fi
. /etc/os-release 2>/dev/null || true
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || [ "${ID:-}" != debian ]; then
  echo "✗ Chromium not found, and installing it here needs Debian with apt as root (this is ${PRETTY_NAME:-unknown}, uid $(id -u))." >&2
  echo "  fix: $fix" >&2
  exit 1
fi
echo "[stagelab] installing Debian's chromium with apt-get (once) ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
path=$(found) || { echo "✗ apt-get installed chromium, yet none is found (STAGELAB_CHROMIUM=${STAGELAB_CHROMIUM:-unset})" >&2; exit 1; }
echo "[stagelab] Chromium for the browser test: $path"
