#!/usr/bin/env bash
# Every test of the project: the Rust workspace (unit, integration, golden and doc tests), then
# the Python package built into a fresh virtual environment and its pytest suite
# (scripts/test-python.sh). This is the test command of the README, and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --release --locked
scripts/test-python.sh
