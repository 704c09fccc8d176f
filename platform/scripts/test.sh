#!/usr/bin/env bash
# Runs the whole suite. Tests that need PostgreSQL, Redis or Chromium skip with a clear message when
# those are missing; under CI (CI=true) a missing server is an error instead, so CI skips nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
source platform/scripts/services.sh
services_detect tokenhub
export DEBUG=false
exec .venv/bin/python -m pytest "$@"
