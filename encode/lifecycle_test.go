package encode_test

import (
	"errors"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/encode/encodetest"
)

// TestFailedReopenRetries: a size the codec refuses fails the reopen with
// ErrUnavailable every time it is asked for (not with an EINVAL from an
// unopened context left behind), and a size it takes afterwards works.
func TestFailedReopenRetries(t *testing.T) {
	for _, b := range []encode.Backend{encode.BackendX264, encode.BackendVP8} {
		t.Run(string(b), func(t *testing.T) {
			const w, h = 64, 48
			e := openOrSkip(t, encode.VideoConfig{Backend: b, Width: w, Height: h})
			pix := make([]byte, w*h*3)
			encodetest.Scene(pix, w, h, 0)
			out := make([]byte, 1<<16)
			if _, _, err := e.Encode(encode.Image{Pix: pix, Width: w, Height: h}, 3000, out); err != nil {
				t.Fatal(err)
			}
			// Both libx264 and libvpx refuse widths above 16383.
			wide := encode.Image{Pix: make([]byte, 16386*2*3), Width: 16386, Height: 2}
			for i := range 2 {
				if _, _, err := e.Encode(wide, int64(6000+i*3000), out); !errors.Is(err, encode.ErrUnavailable) {
					t.Fatalf("attempt %d at 16386x2: %v, want ErrUnavailable", i, err)
				}
			}
			n, key, err := e.Encode(encode.Image{Pix: pix, Width: w, Height: h}, 12000, out)
			if err != nil || n == 0 || !key {
				t.Fatalf("back at %dx%d: n=%d key=%v err=%v, want a keyframe", w, h, n, key, err)
			}
		})
	}
}

// TestCloseZeroValues: every Close is safe on a value whose constructor
// failed part-way (nothing allocated) and idempotent.
func TestCloseZeroValues(t *testing.T) {
	for name, c := range map[string]interface{ Close() error }{
		"VideoEncoder":      &encode.VideoEncoder{},
		"VideoDecoder":      &encode.VideoDecoder{},
		"Converter":         &encode.Converter{},
		"OpusEncoder":       &encode.OpusEncoder{},
		"Resampler":         &encode.Resampler{},
		"FFmpegOpusDecoder": &encode.FFmpegOpusDecoder{},
	} {
		for range 2 {
			if err := c.Close(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}

// rss reports the process's resident memory in bytes.
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

// TestNativeMemoryBounded reopens encoders (size changes, VP8 bitrate
// changes), feeds the decoders pictures of changing size, and opens and
// closes every codec type, hundreds of times: resident memory must stay
// flat. One leaked codec context per cycle costs megabytes (libx264 and
// libvpx keep whole pictures), far above the bound.
//
// glibc gives every OS thread that calls malloc an arena of its own, and
// cgo calls hop between threads, so freed memory scattered over several
// arenas shows as ~10 MiB of growth without any leak. The test therefore
// reruns itself with MALLOC_ARENA_MAX=1, where the same cycles grow by
// 1–3 MiB and a leaked codec context per cycle by hundreds of MiB.
func TestNativeMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	if os.Getenv("MALLOC_ARENA_MAX") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNativeMemoryBounded$", "-test.v")
		cmd.Env = append(os.Environ(), "MALLOC_ARENA_MAX=1")
		out, err := cmd.CombinedOutput()
		t.Logf("rerun with MALLOC_ARENA_MAX=1:\n%s", out)
		if err != nil {
			t.Fatalf("rerun: %v", err)
		}
		return
	}
	x264 := openOrSkip(t, encode.VideoConfig{Backend: encode.BackendX264, Width: 320, Height: 240})
	vp8 := openOrSkip(t, encode.VideoConfig{Backend: encode.BackendVP8, Width: 320, Height: 240})
	dh, err := encode.NewVideoDecoder(encode.CodecH264)
	if err != nil {
		t.Fatal(err)
	}
	defer dh.Close()
	dv, err := encode.NewVideoDecoder(encode.CodecVP8)
	if err != nil {
		t.Fatal(err)
	}
	defer dv.Close()
	sizes := [][2]int{{320, 240}, {160, 120}}
	pix := make([][]byte, len(sizes))
	for i, s := range sizes {
		pix[i] = make([]byte, s[0]*s[1]*3)
		encodetest.Scene(pix[i], s[0], s[1], i)
	}
	out := make([]byte, 1<<20)
	rgb := make([]byte, 320*240*3)
	pcm := make([]int16, encode.AudioFrameSamples)
	pkt := make([]byte, encode.MaxOpusPacket)
	pcm5760 := make([]int16, 5760)
	toRGB := func(f encode.Frame) error { _, err := f.RGB(rgb); return err }
	cycle := func(i int) {
		s := sizes[i%2]
		img := encode.Image{Pix: pix[i%2], Width: s[0], Height: s[1]}
		n, _, err := x264.Encode(img, int64(i+1)*3000, out) // reopens: size changes
		if err != nil {
			t.Fatal(err)
		}
		if err := dh.Decode(out[:n], toRGB); err != nil {
			t.Fatal(err)
		}
		vp8.SetBitrate(1_000_000 * (1 + i%2)) // reopens: a change of half
		img = encode.Image{Pix: pix[0], Width: 320, Height: 240}
		if n, _, err = vp8.Encode(img, int64(i+1)*3000, out); err != nil {
			t.Fatal(err)
		}
		if err := dv.Decode(out[:n], toRGB); err != nil {
			t.Fatal(err)
		}
		e, err := encode.NewVideoEncoder(encode.VideoConfig{Width: 64, Height: 48})
		if err != nil {
			t.Fatal(err)
		}
		e.Close()
		d, err := encode.NewVideoDecoder(encode.CodecVP8)
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		oe, err := encode.NewOpusEncoder(encode.OpusConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if n, err = oe.Encode(pcm, pkt); err != nil {
			t.Fatal(err)
		}
		oe.Close()
		od, err := encode.NewFFmpegOpusDecoder()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := od.Decode(pkt[:n], pcm5760); err != nil {
			t.Fatal(err)
		}
		od.Close()
		r, err := encode.NewResampler(44100, 2)
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		c, err := encode.NewConverter(encode.PixelNV12)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Convert(img, 320, 240); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	for i := range 40 { // let malloc's arenas and the caches settle
		cycle(i)
	}
	debug.FreeOSMemory() // count native memory, not the Go heap's slack
	before := rss(t)
	const cycles = 200
	for i := range cycles {
		cycle(40 + i)
	}
	debug.FreeOSMemory()
	grown := rss(t) - before
	t.Logf("resident memory grew %d KiB over %d cycles", grown>>10, cycles)
	if grown > 8<<20 {
		t.Fatalf("resident memory grew %d MiB over %d cycles of reopen/open/close, want < 8 MiB (a leak)", grown>>20, cycles)
	}
}
