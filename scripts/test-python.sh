#!/usr/bin/env bash
# Builds the Python package from this checkout into a fresh virtual environment and runs its
# tests: `pip install ".[test]"` (maturin builds the extension with cargo), then pytest on
# python/tests. Exit status non-zero on any failure, including "no tests collected".
#
#   scripts/test-python.sh            # venv in .venv-ci (gitignored), reused between runs
#   VENV=/tmp/v scripts/test-python.sh
#   PYTHON=python3.12 scripts/test-python.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv-ci}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
VENV="$(cd "$VENV" && pwd)"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet ".[test]"
# Run from outside the source tree so the installed package (with its extension) is imported,
# not ./python/sepfit.
cd python/tests
set +e
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@" .
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "test-python.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
