#!/usr/bin/env bash
# The whole test suite in two lanes side by side: the tests that build venvs from the wheel
# and run the recipes as written (tests/packaging, tests/recipes) spend most of their time
# in installs and in subprocesses waiting on services, so they share the machine well with
# the rest. Each lane starts its own services on free ports. Exits non-zero when either
# lane fails; extra arguments go to both pytest runs.
set -uo pipefail
cd "$(dirname "$0")/.."

lane_log=$(mktemp -t knot-tests-lane-XXXXXX.log)
.venv/bin/pytest tests/packaging tests/recipes "$@" >"$lane_log" 2>&1 &
lane=$!
trap 'kill "$lane" 2>/dev/null' INT TERM

.venv/bin/pytest tests --ignore=tests/packaging --ignore=tests/recipes "$@"
main_status=$?
wait "$lane"
lane_status=$?

echo
echo "===== tests/packaging and tests/recipes (run beside the rest) ====="
cat "$lane_log"
rm -f "$lane_log"
echo "lanes: rest=$main_status packaging+recipes=$lane_status"
[ "$main_status" -eq 0 ] && [ "$lane_status" -eq 0 ]
