package ratelog

import "testing"

func TestLimiterBurstThenCount(t *testing.T) {
	var l Limiter // a 10 s window: the test runs well within one
	for i := range 10 {
		if ok, _ := l.Allow(); !ok {
			t.Fatalf("line %d of the burst refused", i)
		}
	}
	for range 5 {
		if ok, _ := l.Allow(); ok {
			t.Fatal("line beyond the burst allowed")
		}
	}
	l.start = l.start.Add(-l.Window - 11e9) // the window has passed
	if ok, n := l.Allow(); !ok || n != 5 {
		t.Fatalf("next window: allowed %v with %d suppressed; want true, 5", ok, n)
	}
	if got := Truncate("abcdef", 3); got != "abc…(6 bytes)" {
		t.Errorf("Truncate: %q", got)
	}
}
