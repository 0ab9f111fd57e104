#!/usr/bin/env bash
# The whole suite on a busy machine: two CPU-bound processes run beside it (as many as this
# machine's two cores), so a test that depends on how fast the machine is fails here. Each burner
# stops by itself after 30 minutes, and all are ended when this script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
burners=()
for _ in 1 2; do
  node -e 'const end = Date.now() + 30 * 60 * 1000; while (Date.now() < end) { for (let i = 0; i < 1e6; i++); }' &
  burners+=($!)
done
trap 'kill "${burners[@]}" 2>/dev/null || true' EXIT
echo "test:loaded: ${#burners[@]} CPU-bound processes beside the suite (pids ${burners[*]})"
bash scripts/test.sh "$@"
