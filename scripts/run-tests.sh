#!/usr/bin/env bash
# The whole test suite in two lanes side by side: the tests that build venvs from the wheel,
# run the recipes as written and run steps on other work pools (tests/packaging,
# tests/recipes, tests/compute) spend most of their time in installs, in subprocesses
# waiting on services and in workers' leases, so they share the machine well with the
# rest. The canary sweep (tests/secrets) runs in that lane too, so that both lanes take
# about as long; it uses services that lane starts anyway (PostgreSQL, mlflow server).
# Each lane starts its own services on free ports. Exits non-zero when either lane fails;
# extra arguments go to both pytest runs.
set -uo pipefail
cd "$(dirname "$0")/.."

# Every Python process of the suite (servers, workers, Dask workers, flow and recipe
# subprocesses, the venvs built from the wheel) imports from compiled bytecode: without
# it each import of Prefect, MLflow or Feast compiles their sources again, about twice
# the CPU. The caches go to one folder of this run (PYTHONPYCACHEPREFIX), shared by both
# lanes, so no __pycache__ lands in the checkout, a recipe or a venv.
pycache=$(mktemp -d -t knot-tests-pycache-XXXXXX)
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="$pycache"

lane_log=$(mktemp -t knot-tests-lane-XXXXXX.log)
second_lane=(tests/packaging tests/recipes tests/compute tests/secrets)
.venv/bin/pytest "${second_lane[@]}" "$@" >"$lane_log" 2>&1 &
lane=$!
trap 'kill "$lane" 2>/dev/null' INT TERM

.venv/bin/pytest tests "${second_lane[@]/#/--ignore=}" "$@"
main_status=$?
wait "$lane"
lane_status=$?

echo
echo "===== ${second_lane[*]} (run beside the rest) ====="
cat "$lane_log"
rm -f "$lane_log"
rm -rf "$pycache"
echo "lanes: rest=$main_status second=$lane_status"
[ "$main_status" -eq 0 ] && [ "$lane_status" -eq 0 ]
