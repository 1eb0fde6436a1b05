#!/usr/bin/env bash
# The browser tests drive Debian's chromium through Playwright (executable_path=/usr/bin/chromium). Only Debian's
# package is used. Installs the package when it is missing; needs root or sudo for apt-get.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium is missing and this is no Debian/Ubuntu system: install chromium at /usr/bin/chromium," \
       "or the browser tests fail" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "Installing Debian's chromium for the browser tests..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
