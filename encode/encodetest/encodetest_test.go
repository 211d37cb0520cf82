package encodetest_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/framewire/framewire/encode/encodetest"
)

func TestPSNR(t *testing.T) {
	a := []byte{0, 100, 200, 255}
	if p := encodetest.PSNR(a, a); !math.IsInf(p, 1) {
		t.Fatalf("identical: %v, want +Inf", p)
	}
	// Every sample off by 1: MSE 1, PSNR = 20·log10(255) ≈ 48.13 dB.
	b := []byte{1, 101, 201, 254}
	if p := encodetest.PSNR(a, b); math.Abs(p-48.1308) > 0.001 {
		t.Fatalf("off by one: %.4f dB, want 48.1308", p)
	}
}

func ExamplePSNR() {
	fmt.Printf("%.1f dB\n", encodetest.PSNR([]byte{10, 20, 30, 40}, []byte{12, 18, 30, 40}))
	// Output: 45.1 dB
}
