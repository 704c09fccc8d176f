# Sourced by dev.sh: a local SMTP catcher with a mailbox in the browser (MailDev, from npm), so every email
# the platform sends in development (verification, password reset, invitations, lockouts) can be opened.
# Exports EMAIL_URL and MAILBOX_URL. Installs MailDev under .dev/ on first use (needs Node.js and npm).
MAILDEV_VERSION=3.0.0

mailcatcher_start() {
  local smtp_port="${MAIL_SMTP_PORT:-1025}" web_port="${MAIL_WEB_PORT:-1080}"
  MAILBOX_URL=""
  if [ -n "${EMAIL_URL:-}" ] || [ -n "${EMAIL_HOST:-}" ]; then
    echo "email:    EMAIL_URL/EMAIL_HOST from the environment"
    return
  fi
  if ! command -v npm >/dev/null 2>&1; then
    export EMAIL_URL="consolemail://"
    echo "email:    npm not found; the worker prints emails to its log (install Node.js for a browser mailbox)"
    return
  fi
  local bin=.dev/maildev/node_modules/.bin/maildev
  if [ ! -x "$bin" ] || ! "$bin" --version 2>/dev/null | grep -qx "$MAILDEV_VERSION"; then
    echo "email:    installing MailDev $MAILDEV_VERSION (npm) into .dev/maildev"
    npm install --prefix .dev/maildev --no-audit --no-fund --loglevel=error "maildev@$MAILDEV_VERSION" >/dev/null
  fi
  "$bin" --smtp "$smtp_port" --ip 127.0.0.1 --web "$web_port" --web-ip 127.0.0.1 >.dev/maildev.log 2>&1 &
  MAILDEV_PID=$!
  export EMAIL_URL="smtp://127.0.0.1:${smtp_port}"
  MAILBOX_URL="http://127.0.0.1:${web_port}/"
  echo "email:    MailDev catches every email: ${MAILBOX_URL} (SMTP 127.0.0.1:${smtp_port})"
}

mailcatcher_stop() {
  if [ -n "${MAILDEV_PID:-}" ]; then kill "$MAILDEV_PID" 2>/dev/null || true; fi
}
