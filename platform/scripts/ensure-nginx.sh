#!/usr/bin/env bash
# Debian's nginx drives the reverse-proxy test (tests/test_nginx.py); install it if this machine can.
set -uo pipefail
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "proxy: installing Debian's nginx-light package for the reverse-proxy test"
  # The package would start a system nginx on port 80; the test starts its own on a free port. A
  # policy-rc.d that answers 101 ("not allowed") stops the service from starting, as in Docker images.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  (apt-get install -y -q nginx-light >/tmp/tokenhub-nginx-install.log 2>&1 \
    || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q nginx-light >>/tmp/tokenhub-nginx-install.log 2>&1)) \
    || echo "proxy: could not install nginx (see /tmp/tokenhub-nginx-install.log); the proxy test will skip"
else
  echo "proxy: nginx is not installed and cannot be installed here; the proxy test will skip"
fi
exit 0
