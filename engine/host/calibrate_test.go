package host

import (
	"context"
	"log/slog"
	"math"
	"runtime"
	"testing"
	"time"
)

// Issue 23: Calibrate encodes for real, calibrationEncodersPerCore
// encoders taking turns on each of runtime.NumCPU workers, and derives the
// capacity from the bound it measured.
func TestCalibrate(t *testing.T) {
	c, err := Calibrate(context.Background(), 320, 180, 30, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", c)
	if c.Workers != runtime.NumCPU() || c.Encoders != c.Workers*calibrationEncodersPerCore || c.Frames < c.Encoders || c.Encode <= 0 || c.Convert <= 0 || c.Bound <= 0 {
		t.Errorf("calibration %+v: want %d encoders on each worker, an encode by each, positive times and bound", c, calibrationEncodersPerCore)
	}
	if want := max(1, int(math.Floor(CalibrationEfficiency*c.Bound))); c.Capacity != want {
		t.Errorf("capacity %d from bound %.2f; want %d", c.Capacity, c.Bound, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Calibrate(ctx, 320, 180, 30, time.Second); err == nil {
		t.Error("Calibrate with an ended context: no error")
	}
	if _, err := Calibrate(context.Background(), 0, 180, 30, time.Second); err == nil {
		t.Error("Calibrate of a 0×180 picture: no error")
	}
}

// Issue 23: a node serves -capacity when given (calibrated or not), the
// calibrated figure with -calibrate alone, and DefaultCapacity otherwise.
func TestNodeCapacity(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	cal := NodeOptions{Calibrate: true, CalibrateTime: 200 * time.Millisecond, ModelWidth: 320, ModelHeight: 180}
	n, c, err := cal.capacity(ctx, log)
	if err != nil {
		t.Fatal(err)
	}
	if c == nil || c.Width != 320 || c.Height != 180 || c.Frames == 0 || n != c.Capacity || n < 1 {
		t.Errorf("-calibrate: capacity %d, calibration %+v; want the calibrated figure (>= 1) of a 320x180 encode", n, c)
	}
	explicit := cal
	explicit.Capacity, explicit.CalibrateSize = 3, "160x90"
	if n, c, err := explicit.capacity(ctx, log); err != nil || n != 3 || c == nil || c.Width != 160 {
		t.Errorf("-calibrate -calibrate-size 160x90 -capacity 3: capacity %d, calibration %+v, %v; want 3 and a 160x90 calibration", n, c, err)
	}
	if n, c, err := (NodeOptions{}).capacity(ctx, log); err != nil || n != DefaultCapacity || c != nil {
		t.Errorf("no flags: capacity %d, calibration %v, %v; want %d, none", n, c, err, DefaultCapacity)
	}
	for _, bad := range []NodeOptions{{Capacity: -1}, {Calibrate: true, CalibrateSize: "720p", CalibrateTime: time.Second}} {
		if _, _, err := bad.capacity(ctx, log); err == nil {
			t.Errorf("%+v: no error", bad)
		} else {
			t.Log(err)
		}
	}
}
