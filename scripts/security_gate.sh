#!/usr/bin/env bash
# The security acceptance gate (docs/SECURITY_ACCEPTANCE_CRITERIA.md): every test that checks
# permissions, secure opens, read policies, audit tables and tamper detection. Exits non-zero
# on the first failing suite. Run from anywhere: ./scripts/security_gate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== permission rules (catalog) and caller checks (engine units)"
cargo test -p aedb-catalog --lib permission
cargo test -p aedb --lib permission
echo "== permissions, grants, the model-checked matrix, secure opens, policies, audit, tampering, crashes"
suites=(permissions grants permission_matrix secure_mode audit_policies_ownership security_review secure_tamper secure_crash_sweep)
args=()
for suite in "${suites[@]}"; do args+=(--test "$suite"); done
cargo test -p aedb "${args[@]}"
echo "security gate: passed (${suites[*]})"
