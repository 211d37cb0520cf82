package bench

import (
	"flag"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/framewire/framewire/encode"
)

var gate = flag.Bool("gate", false, "run the performance gate (make bench-gate)")

// Gate thresholds: our throughput must be at least minRatio of the bare
// go-astiav loop measured in the same run, and our code must not allocate
// per frame.
const minRatio = 0.85

// passes reports whether a median ratio clears the gate. It is false for
// NaN (a round with no timed steps on either side) and ±Inf, so a round
// that measured nothing cannot pass.
func passes(med float64) bool {
	return med >= minRatio && !math.IsInf(med, 0)
}

// TestGateRejectsEmptyMeasurements: the verdict is not vacuous.
func TestGateRejectsEmptyMeasurements(t *testing.T) {
	var empty side
	empty.run(0, func() {}, func() {})
	for _, r := range []float64{empty.ratio(), math.NaN(), math.Inf(1), 0, minRatio - 0.01} {
		if passes(r) {
			t.Errorf("ratio %v passes the gate", r)
		}
	}
	if !passes(minRatio) || !passes(1.3) {
		t.Error("a real ratio at or above the bar fails the gate")
	}
}

// TestGate is the performance gate behind `make bench-gate`. For each hot
// path it runs several rounds of our path and the baseline interleaved
// frame by frame (so both see the same load), takes the median of the
// per-round throughput ratios (so a noisy round cannot fail it), and fails
// when that median is below 0.85 or when our path allocates. It does
// nothing without -gate.
func TestGate(t *testing.T) {
	if !*gate {
		t.Skip("performance gate: run with -gate (make bench-gate)")
	}
	const rounds = 9
	paths := []struct {
		name  string
		steps int
		open  pairFunc
	}{
		{"encode x264 720p", 6, func(tb testing.TB) (func(), func(), func() float64, func()) {
			return encodePair(tb, encode.BackendX264, 1280, 720)
		}},
		{"encode vp8 720p", 6, func(tb testing.TB) (func(), func(), func() float64, func()) {
			return encodePair(tb, encode.BackendVP8, 1280, 720)
		}},
		{"convert 720p", 12, func(tb testing.TB) (func(), func(), func() float64, func()) { return convertPair(tb, 1280, 720) }},
		{"decode→latest 720p", 16, func(tb testing.TB) (func(), func(), func() float64, func()) { return decodePair(tb, 1280, 720) }},
		{"opus out", 40, opusOutPair},
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-20s %8s %8s %8s  %s\n", "path", "median", "min", "max", "allocs/frame")
	for _, p := range paths {
		ours, base, allocs, closeAll := p.open(t)
		var ratios []float64
		for range rounds {
			var s side
			s.run(p.steps, ours, base)
			ratios = append(ratios, s.ratio())
		}
		a := allocs()
		closeAll()
		slices.Sort(ratios)
		med := ratios[len(ratios)/2]
		fmt.Fprintf(&table, "%-20s %8.3f %8.3f %8.3f  %.2f\n", p.name, med, ratios[0], ratios[len(ratios)-1], a)
		if a != 0 {
			t.Errorf("%s: our code allocates %.2f times per frame, want 0", p.name, a)
		}
		if !passes(med) {
			t.Errorf("%s: throughput %.3f× the same-run go-astiav baseline (median of %d rounds %v), want ≥ %.2f", p.name, med, rounds, ratios, minRatio)
		}
	}
	t.Logf("pipeline/baseline throughput ratios:\n%s", table.String())
}
