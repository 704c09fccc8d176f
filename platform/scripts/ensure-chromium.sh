#!/usr/bin/env bash
# Debian's Chromium drives the browser tests; install it if this machine can. fonts-noto-cjk too, so the
# Chinese pages' screenshots show characters, not empty boxes.
set -uo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK" && ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then
  need+=(fonts-noto-cjk)
fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "browser: installing Debian's ${need[*]} for the browser tests"
  (apt-get install -y -q "${need[@]}" >/tmp/tokenhub-chromium-install.log 2>&1 \
    || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${need[@]}" >>/tmp/tokenhub-chromium-install.log 2>&1)) \
    || echo "browser: could not install ${need[*]} (see /tmp/tokenhub-chromium-install.log); browser tests may skip or show no Chinese"
else
  echo "browser: ${need[*]} not installed and cannot be installed here; browser tests skip without chromium"
fi
exit 0
