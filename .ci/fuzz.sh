#!/usr/bin/env bash
# fuzz.sh TIME: run every fuzz target of the module (every func Fuzz* in a
# _test.go file, found anew each run) under -fuzz for TIME each, one after
# another. Failing inputs land in the package's testdata/fuzz as usual.
set -euo pipefail
time=${1:-5s}
cd "$(dirname "$0")/.."
grep -rl --include='*_test.go' --exclude-dir=node_modules -E '^func Fuzz[A-Za-z0-9_]*\(' . | sort | while read -r file; do
	pkg=./$(dirname "${file#./}")
	for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
		echo "fuzz: $pkg $target for $time"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" -parallel 1 "$pkg"
	done
done
