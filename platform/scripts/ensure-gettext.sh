#!/usr/bin/env bash
# GNU gettext (msgfmt, msgmerge, xgettext) compiles the translation catalogue (locale/) and lets
# makemessages and platform/checks/translations.py read the code's strings. Install Debian's if we can.
set -uo pipefail
if command -v msgfmt >/dev/null 2>&1 && command -v xgettext >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "gettext: installing Debian's gettext package (translations)"
  (apt-get install -y -q gettext >/tmp/tokenhub-gettext-install.log 2>&1 \
    || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q gettext >>/tmp/tokenhub-gettext-install.log 2>&1)) \
    || echo "gettext: could not install gettext (see /tmp/tokenhub-gettext-install.log); pages stay in English"
else
  echo "gettext: msgfmt is not installed and cannot be installed here; pages stay in English"
fi
exit 0
