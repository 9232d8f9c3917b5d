#!/usr/bin/env bash
# Run MLflow's own tracking-server tests against `atelier serve`, and against
# MLflow's own server for comparison. Needs network access (GitHub, PyPI).
#
#   bench/mlflow-server-tests/run.sh            # everything
#   MLFLOW_VERSION=3.17.2 ATELIER_BIN=target/debug/atelier bench/mlflow-server-tests/run.sh
#   SKIP_MLFLOW_RUN=1 bench/mlflow-server-tests/run.sh   # only the Atelier run
#
# Work files go to $WORK (default /tmp/atelier-mlflow-server-tests): the MLflow
# checkout, a throwaway venv, the JUnit reports and results.tsv. Nothing is added
# to the project's requirements. Servers listen on 127.0.0.1 only. MLflow's own
# server resolves webhook hosts (example.com) when they are saved: run with DNS,
# or its webhook tests fail for that reason alone. MLFLOW_TESTS (space-separated
# paths) replaces the default list of test files.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
MLFLOW_VERSION=${MLFLOW_VERSION:-3.17.2}
WORK=${WORK:-/tmp/atelier-mlflow-server-tests}
TIMEOUT=${TEST_TIMEOUT:-120}
read -r -a TESTS <<<"${MLFLOW_TESTS:-tests/tracking/test_rest_tracking.py tests/tracking/test_model_registry.py tests/tracking/test_mlflow_artifacts.py tests/tracking/test_client_webhooks.py}"
mkdir -p "$WORK"
src=$WORK/mlflow-$MLFLOW_VERSION

# 1. MLflow's tests at the tag of the pinned client version (tests/ only).
if [[ ! -d $src/tests ]]; then
  rm -rf "$src"
  git -c advice.detachedHead=false clone --quiet --depth 1 --branch "v$MLFLOW_VERSION" --filter=blob:none --sparse \
    https://github.com/mlflow/mlflow "$src"
  git -C "$src" sparse-checkout set tests requirements
fi
echo "MLflow tests: $(git -C "$src" describe --tags --always) ($(git -C "$src" rev-parse HEAD))"

# 2. A throwaway venv with the same MLflow client and the test dependencies.
venv=$WORK/venv
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "mlflow==$MLFLOW_VERSION" pytest pytest-timeout pytest-asyncio \
    psutil cryptography
  if [[ -f $src/requirements/test-requirements.txt ]]; then
    "$venv/bin/pip" install -q -r "$src/requirements/test-requirements.txt" ||
      echo "warning: some of MLflow's test requirements did not install" >&2
  fi
fi

# 3. The binary.
if [[ -z ${ATELIER_BIN:-} ]]; then
  (cd "$repo" && nice cargo build -q -p atelier)
  ATELIER_BIN=$repo/target/debug/atelier
fi
export ATELIER_BIN=$(cd "$(dirname "$ATELIER_BIN")" && pwd)/$(basename "$ATELIER_BIN")

common=(-p no:cacheprovider -q -rN --timeout "$TIMEOUT" -o junit_family=xunit2)
cd "$src"

# 4. Against Atelier: the plugin replaces MLflow's server-start helpers.
echo "== against atelier serve"
PYTHONPATH=$here${PYTHONPATH:+:$PYTHONPATH} nice "$venv/bin/python" -m pytest \
  -p atelier_server_plugin "${common[@]}" --junitxml "$WORK/atelier.xml" "${TESTS[@]}" |
  tail -3 || true

# 5. Against MLflow's own server, with MLflow's own fixtures.
if [[ -z ${SKIP_MLFLOW_RUN:-} ]]; then
  echo "== against MLflow's own server"
  rm -f "$WORK/mlflow.xml"
  nice "$venv/bin/python" -m pytest "${common[@]}" --junitxml "$WORK/mlflow.xml" "${TESTS[@]}" |
    tail -3 || true
fi

# 6. Counts and per-test outcomes.
mlflow_xml=$WORK/mlflow.xml
[[ -z ${SKIP_MLFLOW_RUN:-} ]] || mlflow_xml=-
"$venv/bin/python" "$here/compare.py" "$WORK/atelier.xml" "$mlflow_xml" "$WORK/results.tsv"
echo "per-test outcomes: $WORK/results.tsv"
