#!/usr/bin/env bash
# Installs the system services the test suite starts itself, where they are missing.
# PostgreSQL's binaries are expected under /usr/lib/postgresql/*/bin.
set -euo pipefail

# Seconds to wait for another package install (unattended upgrades, a second CI step)
# to release the system package manager's lock, instead of failing at once.
APT_LOCK_WAIT_SECONDS="${APT_LOCK_WAIT_SECONDS:-600}"

apt_get() {
  apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT_SECONDS" "$@"
}

main() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  # The browser test drives Prefect's UI in Debian's Chromium (never a downloaded browser).
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)  # Spark's JVM

  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "Missing services: ${missing[*]}. Install them (e.g. apt-get install ${missing[*]})," >&2
    echo "or run the suite without KNOT_REQUIRE_SERVICES=1 to skip the tests that need them." >&2
    [ "${KNOT_REQUIRE_SERVICES:-0}" = "1" ] && return 1
    return 0
  fi
  echo "Installing ${missing[*]} from Debian's packages..."
  export DEBIAN_FRONTEND=noninteractive
  apt_get update -qq
  apt_get install -y -qq "${missing[@]}" >/dev/null
  # The packaged server must not hold the default ports; tests start their own.
  for service in redis-server postgresql; do
    (service "$service" stop >/dev/null 2>&1 || true)
  done
}

# Sourcing the file (as its test does) defines apt_get without installing anything.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
