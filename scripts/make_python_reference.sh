#!/usr/bin/env bash
# Regenerates the reference output the Python tests compare with: what the `sepfit` CLI prints
# for the bundled seed 000 example (`--format json`). Run from the repository root:
#   scripts/make_python_reference.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --quiet -p sepfit-cli -- fit data/seed000.csv \
    --model "y ~ a1*exp(b1*t1) + a2*exp(b2*t2)" --start "b1=0.4, b2=0.6" --format json \
    > python/tests/data/seed000_cli.json
echo "wrote python/tests/data/seed000_cli.json"
