#!/usr/bin/env bash
# A longer, random schemathesis pass over the whole API (CI runs a short,
# derandomized one). Every failure it finds should become a fixed test case
# (tests/contract.rs or the domain's test file) before it is fixed.
#   FUZZ_SECONDS=1800 scripts/fuzz.sh
set -euo pipefail
exec "$(dirname "$0")/contract.sh" fuzz
