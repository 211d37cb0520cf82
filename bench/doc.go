// Package bench holds Framewire's end-to-end benchmarks, each run beside a
// baseline measured in the same process (a bare go-astiav loop with the
// same encoder settings), so results are ratios rather than absolute times.
package bench
