#!/usr/bin/env bash
# fuzz.sh TIME: run every fuzz target of the module (every func Fuzz* in a
# _test.go file, found anew each run) under -fuzz for TIME each, one after
# another. Failing inputs land in the package's testdata/fuzz as usual.
#
# Go 1.26's fuzz coordinator can end a run at the -fuzztime boundary with
# a bare "context deadline exceeded" and no failing input when a worker is
# late to stop under load (go.dev/issue/75804, fixed in Go 1.27). Such a
# failure — that line as the only reason, no new file under testdata/fuzz
# — is reported and the target's seeds and stored inputs are replayed
# instead; any other failure fails the run.
set -euo pipefail
time=${1:-5s}
cd "$(dirname "$0")/.."
inputs() { if [ -d "$1" ]; then ls "$1" | wc -l; else echo 0; fi; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
grep -rl --include='*_test.go' --exclude-dir=node_modules -E '^func Fuzz[A-Za-z0-9_]*\(' . | sort | while read -r file; do
	dir=$(dirname "${file#./}")
	pkg=./$dir
	for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
		echo "fuzz: $pkg $target for $time"
		corpus=$dir/testdata/fuzz/$target
		before=$(inputs "$corpus")
		if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" -parallel 1 "$pkg" 2>&1 | tee "$log"; then
			continue
		fi
		after=$(inputs "$corpus")
		reasons=$(grep -vE '^(fuzz: |--- FAIL: |FAIL|exit status|ok )' "$log" | sed 's/^[[:space:]]*//' | sort -u)
		if [ "$after" = "$before" ] && [ "$reasons" = "context deadline exceeded" ]; then
			echo "fuzz: $target stopped late at the -fuzztime boundary with no failing input (go.dev/issue/75804); replaying its corpus"
			go test -count=1 -run "^${target}\$" "$pkg"
			continue
		fi
		exit 1
	done
done
