//go:build linux

package encode_test

import (
	"testing"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/encode/encodetest"
)

// TestStageCPU: an encoder given a StageCPU adds each frame's conversion
// and encode thread CPU to it (x264's encode costs several times the
// conversion), two encoders may share one, and measuring allocates
// nothing per frame.
func TestStageCPU(t *testing.T) {
	const w, h = 640, 360
	var st encode.StageCPU
	encs := []*encode.VideoEncoder{
		openOrSkip(t, encode.VideoConfig{Width: w, Height: h, StageCPU: &st}),
		openOrSkip(t, encode.VideoConfig{Width: w, Height: h, StageCPU: &st}),
	}
	pix := make([]byte, w*h*3)
	out := make([]byte, 1<<20)
	var pts int64
	step := func() {
		pts += 3000
		encodetest.Scene(pix, w, h, int(pts/3000))
		for _, e := range encs {
			if _, _, err := e.Encode(encode.Image{Pix: pix, Width: w, Height: h}, pts, out); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 20 {
		step()
	}
	conv, enc, frames := st.Totals()
	if frames != 40 {
		t.Fatalf("StageCPU counted %d frames, want 40", frames)
	}
	if conv <= 0 || enc < 2*conv {
		t.Fatalf("StageCPU: conversion %v, encode %v over %d frames; want both > 0 and the encode at least twice the conversion", conv, enc, frames)
	}
	if a := testing.AllocsPerRun(20, step); a != 0 {
		t.Fatalf("encoding with StageCPU allocates %.1f times per step, want 0", a)
	}
	// A refused picture is counted as no frame.
	_, _, before := st.Totals()
	if _, _, err := encs[0].Encode(encode.Image{Pix: pix[:10], Width: w, Height: h}, pts+3000, out); err == nil {
		t.Fatal("Encode took a 10-byte picture")
	}
	if _, _, n := st.Totals(); n != before {
		t.Fatalf("a refused picture took StageCPU from %d frames to %d", before, n)
	}
}
