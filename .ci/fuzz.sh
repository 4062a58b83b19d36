#!/usr/bin/env bash
# Run every fuzz target in the repository for a bounded time each, and fail
# when one finds a crasher.
#
#   FUZZTIME  how long each target fuzzes (go test -fuzztime), default 10s
#   FUZZ      an extended regexp: only targets whose name matches it run
#
# Targets are found, not listed here: every package with a `func Fuzz` in a
# test file is asked for its targets with `go test -list`, so a new fuzz test
# runs in CI without touching this script.
#
# A crasher is written by Go to PKG/testdata/fuzz/FuzzX/<hash>. Reproduce it
# with `go test -run 'FuzzX/<hash>' ./PKG`, fix the bug, and commit the file:
# from then on the plain `go test ./...` runs it as a regression case.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-10s}
only=${FUZZ:-.}
start=$(date +%s)
targets=0
failed=()

# Packages whose test files hold a fuzz target.
pkgs=()
while read -r pkg dir; do
  if grep -qs '^func Fuzz' "$dir"/*_test.go; then
    pkgs+=("$pkg")
  fi
done < <(go list -f '{{.ImportPath}} {{.Dir}}' ./...)

for pkg in "${pkgs[@]}"; do
  # `go test -list` prints the matching names, then "ok  pkg ...".
  names=$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' | grep -E -- "$only" || true)
  for name in $names; do
    targets=$((targets + 1))
    t0=$(date +%s)
    log=$(mktemp)
    ok=0
    go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1 && ok=1
    # Go's fuzzing coordinator can give up with "context deadline exceeded"
    # and no failing input when a worker stalls on a loaded machine: run the
    # target once more. A hang in our code stalls the retry too, and fails.
    if [ $ok = 0 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
      echo "fuzz: retry $pkg $name: the fuzzing engine timed out without a failing input"
      go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1 && ok=1
    fi
    if [ $ok = 1 ]; then
      echo "fuzz: ok   $pkg $name ($(( $(date +%s) - t0 ))s)"
    else
      echo "fuzz: FAIL $pkg $name ($(( $(date +%s) - t0 ))s)"
      tail -n 40 "$log"
      failed+=("$pkg.$name")
    fi
    rm -f "$log"
  done
done

elapsed=$(( $(date +%s) - start ))
echo "fuzz: ${targets} targets in ${#pkgs[@]} packages, ${fuzztime} each, ${elapsed}s in all, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashers found by: ${failed[*]}"
  # The new inputs Go wrote: commit them, with the fix, as regression cases.
  git status --porcelain --untracked-files=all -- '*/testdata/fuzz/*' || true
  exit 1
fi
