#!/usr/bin/env bash
# Debian's Chromium drives the browser tests; install it if this machine can.
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "browser: installing Debian's chromium package for the browser tests"
  (apt-get install -y -q chromium >/tmp/tokenhub-chromium-install.log 2>&1 \
    || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >>/tmp/tokenhub-chromium-install.log 2>&1)) \
    || echo "browser: could not install chromium (see /tmp/tokenhub-chromium-install.log); browser tests will skip"
else
  echo "browser: chromium is not installed and cannot be installed here; browser tests will skip"
fi
exit 0
