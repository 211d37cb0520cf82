package encode_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/framewire/framewire/encode/encodetest"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/framewire/framewire/encode"
)

// noisy adds deterministic texture that changes every frame, so rate
// control has to spend bits and bitrate changes are visible.
func noisy(pix []byte, i int) {
	s := uint32(i*2654435761 + 1)
	for k := range pix {
		s ^= s << 13
		s ^= s >> 17
		s ^= s << 5
		pix[k] = pix[k]/2 + byte(s>>25)
	}
}

func openOrSkip(t testing.TB, cfg encode.VideoConfig) *encode.VideoEncoder {
	t.Helper()
	e, err := encode.NewVideoEncoder(cfg)
	if errors.Is(err, encode.ErrUnavailable) && cfg.Backend == encode.BackendNVENC {
		t.Skipf("h264_nvenc does not open on this host (no NVIDIA GPU with NVENC and driver): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestRoundTripPSNR(t *testing.T) {
	for _, b := range []encode.Backend{encode.BackendX264, encode.BackendVP8, encode.BackendNVENC} {
		t.Run(string(b), func(t *testing.T) {
			const w, h, frames = 640, 360, 30
			enc := openOrSkip(t, encode.VideoConfig{Backend: b, Width: w, Height: h})
			dec, err := encode.NewVideoDecoder(b.Codec())
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			src := make([]byte, w*h*3)
			got := make([]byte, w*h*3)
			out := make([]byte, 1<<21)
			decoded, worst := 0, 99.0
			for i := range frames {
				encodetest.Scene(src, w, h, i)
				n, key, err := enc.Encode(encode.Image{Pix: src, Width: w, Height: h}, int64(i*3000), out)
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 && !key {
					t.Fatal("first packet is not a keyframe")
				}
				if n == 0 {
					t.Fatalf("frame %d: no packet (the encoder must not buffer frames)", i)
				}
				err = dec.Decode(out[:n], func(f encode.Frame) error {
					if fw, fh := f.Size(); fw != w || fh != h {
						t.Fatalf("decoded %dx%d, want %dx%d", fw, fh, w, h)
					}
					if _, err := f.RGB(got); err != nil {
						return err
					}
					decoded++
					worst = min(worst, encodetest.PSNR(src, got))
					if testing.Verbose() {
						t.Logf("frame %d: %d bytes, %.1f dB", i, n, encodetest.PSNR(src, got))
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if decoded != frames {
				t.Fatalf("decoded %d of %d frames in step (decoder or encoder adds delay)", decoded, frames)
			}
			t.Logf("%s: worst PSNR %.1f dB over %d frames", b, worst, frames)
			if worst < 30 {
				t.Fatalf("worst PSNR %.1f dB, want ≥ 30", worst)
			}
		})
	}
}

// nalTypes lists the H.264 NAL unit types of an Annex-B access unit.
func nalTypes(au []byte) []int {
	var types []int
	for i := 0; i+3 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 {
			types = append(types, int(au[i+3]&0x1f))
			i += 3
		}
	}
	return types
}

func TestKeyframeOnRequestCarriesParameterSets(t *testing.T) {
	const w, h = 320, 240
	for _, b := range []encode.Backend{encode.BackendX264, encode.BackendVP8} {
		t.Run(string(b), func(t *testing.T) {
			enc := openOrSkip(t, encode.VideoConfig{Backend: b, Width: w, Height: h})
			pix := make([]byte, w*h*3)
			out := make([]byte, 1<<20)
			for i := range 40 {
				encodetest.Scene(pix, w, h, i)
				if i == 25 {
					enc.RequestKeyframe()
				}
				n, key, err := enc.Encode(encode.Image{Pix: pix, Width: w, Height: h}, int64(i*3000), out)
				if err != nil {
					t.Fatal(err)
				}
				wantKey := i == 0 || i == 25
				if key != wantKey {
					t.Fatalf("frame %d: key=%v, want %v (infinite GOP, keyframes only on request)", i, key, wantKey)
				}
				if b == encode.BackendX264 && key {
					types := nalTypes(out[:n])
					has := func(x int) bool {
						for _, t := range types {
							if t == x {
								return true
							}
						}
						return false
					}
					if !has(7) || !has(8) || !has(5) {
						t.Fatalf("frame %d keyframe NAL types %v, want SPS(7), PPS(8) and IDR(5)", i, types)
					}
				}
			}
		})
	}
}

func TestSizeChangeReinitialisesAndKeyframes(t *testing.T) {
	for _, b := range []encode.Backend{encode.BackendX264, encode.BackendVP8} {
		t.Run(string(b), func(t *testing.T) {
			enc := openOrSkip(t, encode.VideoConfig{Backend: b, Width: 320, Height: 240})
			dec, err := encode.NewVideoDecoder(b.Codec())
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			out := make([]byte, 1<<21)
			sizes := [][2]int{{320, 240}, {320, 240}, {641, 359}, {641, 359}, {160, 120}}
			for i, s := range sizes {
				w, h := s[0], s[1]
				pix := make([]byte, w*h*3)
				encodetest.Scene(pix, w, h, i)
				n, key, err := enc.Encode(encode.Image{Pix: pix, Width: w, Height: h}, int64(i*3000), out)
				if err != nil {
					t.Fatal(err)
				}
				changed := i == 0 || sizes[i-1] != s
				if key != changed {
					t.Fatalf("frame %d (%dx%d): key=%v, want %v", i, w, h, key, changed)
				}
				ew, eh := enc.Size()
				if ew != (w+1)&^1 || eh != (h+1)&^1 {
					t.Fatalf("coded size %dx%d for a %dx%d picture", ew, eh, w, h)
				}
				var dw, dh int
				if err := dec.Decode(out[:n], func(f encode.Frame) error { dw, dh = f.Size(); return nil }); err != nil {
					t.Fatal(err)
				}
				if dw != ew || dh != eh {
					t.Fatalf("frame %d decoded as %dx%d, want %dx%d", i, dw, dh, ew, eh)
				}
			}
		})
	}
}

// TestSetBitrateChangesOutputSize measures that a bitrate change at run
// time changes what the encoder spends, and (for libx264) without a
// reopen: no keyframe appears.
func TestSetBitrateChangesOutputSize(t *testing.T) {
	const w, h, fps = 320, 240, 30
	for _, b := range []encode.Backend{encode.BackendX264, encode.BackendVP8} {
		t.Run(string(b), func(t *testing.T) {
			enc := openOrSkip(t, encode.VideoConfig{Backend: b, Width: w, Height: h, FPS: fps, Bitrate: 2_000_000})
			pix := make([]byte, w*h*3)
			out := make([]byte, 1<<21)
			phase := func(from, to int) (bytes int, keys int) {
				for i := from; i < to; i++ {
					encodetest.Scene(pix, w, h, i)
					noisy(pix, i)
					n, key, err := enc.Encode(encode.Image{Pix: pix, Width: w, Height: h}, int64(i*90000/fps), out)
					if err != nil {
						t.Fatal(err)
					}
					if i >= from+15 { // let rate control settle
						bytes += n
					}
					if key && i > 0 {
						keys++
					}
				}
				return bytes, keys
			}
			high, _ := phase(0, 60)
			enc.SetBitrate(250_000)
			low, keys := phase(60, 120)
			if enc.Bitrate() != 250_000 {
				t.Fatalf("Bitrate() = %d after SetBitrate(250000)", enc.Bitrate())
			}
			highBps, lowBps := high*8*fps/45, low*8*fps/45
			t.Logf("%s: %d bit/s at 2 Mbit/s, %d bit/s at 250 kbit/s, %d keyframes after the change", b, highBps, lowBps, keys)
			if lowBps*3 > highBps {
				t.Fatalf("output %d bit/s after SetBitrate(250k), %d before: want at most a third", lowBps, highBps)
			}
			if lowBps > 250_000*3/2 {
				t.Fatalf("output %d bit/s after SetBitrate(250k), want ≤ 375k", lowBps)
			}
			wantKeys := 0
			if b == encode.BackendVP8 {
				wantKeys = 1 // libvpx reopens
			}
			if keys != wantKeys {
				t.Fatalf("%d keyframes after the change, want %d", keys, wantKeys)
			}
		})
	}
}

func TestEncodeDecodeDoNotAllocate(t *testing.T) {
	const w, h = 320, 240
	for _, b := range []encode.Backend{encode.BackendX264, encode.BackendVP8} {
		t.Run(string(b), func(t *testing.T) {
			enc := openOrSkip(t, encode.VideoConfig{Backend: b, Width: w, Height: h})
			dec, err := encode.NewVideoDecoder(b.Codec())
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			pix := make([]byte, w*h*3)
			rgb := make([]byte, w*h*3)
			out := make([]byte, 1<<20)
			encodetest.Scene(pix, w, h, 0)
			img := encode.Image{Pix: pix, Width: w, Height: h}
			var pts int64
			var n int
			sink := func(f encode.Frame) error { _, err := f.RGB(rgb); return err }
			step := func() {
				pts += 3000
				if b == encode.BackendX264 {
					// The congestion controller retargets often; libx264
					// takes it in place, so it must not allocate either.
					// (VP8 reopens for a change, a rare path.)
					enc.SetBitrate(2_000_000 + int(pts/3000%2)*100_000)
				}
				var err error
				if n, _, err = enc.Encode(img, pts, out); err != nil {
					t.Fatal(err)
				}
				if err := dec.Decode(out[:n], sink); err != nil {
					t.Fatal(err)
				}
			}
			for range 5 {
				step()
			}
			if a := testing.AllocsPerRun(50, step); a != 0 {
				t.Fatalf("encode+decode→RGB allocates %.1f times per frame, want 0", a)
			}
		})
	}
}

func TestNVENC(t *testing.T) {
	enc := openOrSkip(t, encode.VideoConfig{Backend: encode.BackendNVENC, Width: 1280, Height: 720})
	pix := make([]byte, 1280*720*3)
	out := make([]byte, 1<<21)
	for i := range 10 {
		encodetest.Scene(pix, 1280, 720, i)
		n, key, err := enc.Encode(encode.Image{Pix: pix, Width: 1280, Height: 720}, int64(i*3000), out)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 || key != (i == 0) {
			t.Fatalf("frame %d: %d bytes key=%v", i, n, key)
		}
	}
}

func TestProbe(t *testing.T) {
	var logs, stray bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	// FFmpeg's own lines during the probe (NVENC's "Cannot load
	// libcuda.so.1") belong in the reasons, not in any log.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&stray, nil)))
	b, results, err := encode.Probe(ctx, logger, nil)
	slog.SetDefault(prev)
	if err != nil {
		t.Fatal(err)
	}
	if stray.Len() > 0 {
		t.Errorf("FFmpeg logged outside the probe's reasons:\n%s", stray.String())
	}
	if len(results) == 0 || results[0].Backend != encode.BackendNVENC {
		t.Fatalf("probe did not try NVENC first: %+v", results)
	}
	if results[0].Err == nil {
		if b != encode.BackendNVENC {
			t.Fatalf("NVENC works but %s was chosen", b)
		}
		t.Log("NVENC is available here; the fallback is tested where it is not")
	} else {
		if b != encode.BackendX264 {
			t.Fatalf("without NVENC probe chose %s, want %s", b, encode.BackendX264)
		}
		if !errors.Is(results[0].Err, encode.ErrUnavailable) {
			t.Fatalf("NVENC failure %v does not wrap ErrUnavailable", results[0].Err)
		}
		if !strings.Contains(results[0].Err.Error(), "(FFmpeg: ") {
			t.Errorf("NVENC's reason %q lacks what FFmpeg said", results[0].Err)
		}
		if !strings.Contains(logs.String(), "skipped_h264_nvenc") {
			t.Fatalf("the reason NVENC was skipped is not in the log:\n%s", logs.String())
		}
		t.Logf("NVENC rejected: %v", results[0].Err)
	}
	if n := strings.Count(logs.String(), "video encoder chosen"); n != 1 {
		t.Fatalf("choice logged %d times, want once:\n%s", n, logs.String())
	}

	b, _, err = encode.Probe(ctx, nil, []encode.Codec{encode.CodecVP8})
	if err != nil || b != encode.BackendVP8 {
		t.Fatalf("VP8-only client: got %s, %v; want %s", b, err, encode.BackendVP8)
	}
	_, results, err = encode.Probe(ctx, nil, []encode.Codec{encode.CodecOpus})
	if !errors.Is(err, encode.ErrNoBackend) || len(results) != 3 {
		t.Fatalf("no video codec allowed: err %v, %d results; want ErrNoBackend and 3 reasons", err, len(results))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := encode.Probe(cctx, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled probe: %v", err)
	}
}

func TestBadInputAndClose(t *testing.T) {
	if _, err := encode.NewVideoEncoder(encode.VideoConfig{Width: 0, Height: 10}); !errors.Is(err, encode.ErrBadImage) {
		t.Fatalf("zero width: %v", err)
	}
	if _, err := encode.NewVideoEncoder(encode.VideoConfig{Backend: "mpeg2", Width: 10, Height: 10}); err == nil || !strings.Contains(err.Error(), "unknown backend") {
		t.Fatalf("unknown backend: %v", err)
	}
	if _, err := encode.NewVideoEncoder(encode.VideoConfig{Width: 16, Height: 16, Pixel: encode.PixelNV12}); err == nil {
		t.Fatal("libx264 accepted NV12 input")
	}
	enc := openOrSkip(t, encode.VideoConfig{Width: 64, Height: 64})
	out := make([]byte, 1<<16)
	if _, _, err := enc.Encode(encode.Image{Pix: make([]byte, 10), Width: 64, Height: 64}, 0, out); !errors.Is(err, encode.ErrBadImage) {
		t.Fatalf("short pixels: %v", err)
	}
	if _, _, err := enc.Encode(encode.Image{Pix: make([]byte, 64*64*3), Width: 64, Height: 64, Stride: 10}, 0, out); !errors.Is(err, encode.ErrBadImage) {
		t.Fatalf("short stride: %v", err)
	}
	pix := make([]byte, 64*64*3)
	encodetest.Scene(pix, 64, 64, 3)
	n, _, err := enc.Encode(encode.Image{Pix: pix, Width: 64, Height: 64}, 0, out[:4])
	if !errors.Is(err, encode.ErrShortBuffer) || n <= 4 {
		t.Fatalf("4-byte buffer: n=%d err=%v", n, err)
	}
	if _, key, err := enc.Encode(encode.Image{Pix: pix, Width: 64, Height: 64}, 3000, out); err != nil || !key {
		t.Fatalf("after a lost packet the next frame must be a keyframe: key=%v err=%v", key, err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := enc.Encode(encode.Image{Pix: pix, Width: 64, Height: 64}, 0, out); !errors.Is(err, encode.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if _, err := encode.NewVideoDecoder(encode.CodecOpus); err == nil {
		t.Fatal("video decoder for opus")
	}
}

type captureHandler struct {
	mu    sync.Mutex
	lines []string
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.lines = append(h.lines, r.Level.String()+" "+r.Message)
	h.mu.Unlock()
	return nil
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

func TestRouteFFmpegLog(t *testing.T) {
	h := &captureHandler{}
	encode.RouteFFmpegLog(slog.New(h))
	defer encode.RouteFFmpegLog(nil)
	enc, err := encode.NewVideoEncoder(encode.VideoConfig{Width: 64, Height: 64})
	if err != nil {
		t.Fatal(err)
	}
	enc.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	found := false
	for _, l := range h.lines {
		if strings.Contains(l, "libx264") && strings.HasPrefix(l, "DEBUG") {
			found = true
		}
	}
	if !found {
		t.Fatalf("libx264's info lines did not reach the logger at debug level: %q", h.lines)
	}
}

// TestBitrateHysteresis: where a bitrate change costs a keyframe (VP8
// reopens, h264_nvenc forces an IDR) a change under a fifth is not taken
// and makes no keyframe; libx264 takes every change in place.
func TestBitrateHysteresis(t *testing.T) {
	const w, h = 160, 120
	for _, b := range []encode.Backend{encode.BackendX264, encode.BackendVP8, encode.BackendNVENC} {
		t.Run(string(b), func(t *testing.T) {
			enc := openOrSkip(t, encode.VideoConfig{Backend: b, Width: w, Height: h, Bitrate: 1_000_000})
			pix := make([]byte, w*h*3)
			out := make([]byte, 1<<20)
			pts := int64(0)
			encode1 := func() bool {
				pts += 3000
				encodetest.Scene(pix, w, h, int(pts/3000))
				_, key, err := enc.Encode(encode.Image{Pix: pix, Width: w, Height: h}, pts, out)
				if err != nil {
					t.Fatal(err)
				}
				return key
			}
			encode1()
			costly := b != encode.BackendX264
			enc.SetBitrate(1_100_000) // a tenth
			if key := encode1(); key {
				t.Fatalf("a change of a tenth made a keyframe")
			}
			want := 1_100_000
			if costly {
				want = 1_000_000
			}
			if got := enc.Bitrate(); got != want {
				t.Fatalf("after a change of a tenth Bitrate() = %d, want %d", got, want)
			}
			enc.SetBitrate(500_000) // half
			key := encode1()
			if got := enc.Bitrate(); got != 500_000 {
				t.Fatalf("after halving Bitrate() = %d, want 500000", got)
			}
			if key != costly {
				t.Fatalf("halving the bitrate: key=%v, want %v", key, costly)
			}
		})
	}
}

// The encoders' private options are written once (CodecOptions) and used
// by NewVideoEncoder and by package gpu's device encoders alike.
func TestCodecOptions(t *testing.T) {
	get := func(b encode.Backend, threads int, key string) string {
		for _, o := range encode.CodecOptions(b, threads) {
			if o.Key == key {
				return o.Value
			}
		}
		return ""
	}
	if p := get(encode.BackendX264, 1, "x264-params"); !strings.Contains(p, "keyint=infinite") || !strings.Contains(p, "repeat-headers=1") || !strings.Contains(p, "sliced-threads=0") {
		t.Errorf("libx264 params %q", p)
	}
	if p := get(encode.BackendX264, 2, "x264-params"); !strings.Contains(p, "sliced-threads=1") {
		t.Errorf("libx264 params with 2 threads %q", p)
	}
	if get(encode.BackendNVENC, 0, "forced-idr") != "1" || get(encode.BackendNVENC, 0, "profile") != "baseline" {
		t.Errorf("h264_nvenc options %v", encode.CodecOptions(encode.BackendNVENC, 0))
	}
	if get(encode.BackendVP8, 0, "deadline") != "realtime" || encode.CodecOptions("nope", 0) != nil {
		t.Error("VP8 or unknown backend options wrong")
	}
}

// Encoders running at once on their own goroutines convert into the
// process's shared pictures (encode's picture pool) and never into one
// another's: each one's stream, a different phase of the scene per
// encoder, is byte for byte the stream the same encoder makes running
// alone, and decodes to its own scene.
func TestConcurrentEncodersKeepTheirPictures(t *testing.T) {
	const w, h, frames, encoders = 320, 180, 30, 4
	alone := make([][]byte, encoders)
	for k := range encoders {
		s, _, err := roundTripScene(w, h, frames, 11*k)
		if err != nil {
			t.Fatal(err)
		}
		alone[k] = s
	}
	var wg sync.WaitGroup
	streams, worst, errs := make([][]byte, encoders), make([]float64, encoders), make([]error, encoders)
	for k := range encoders {
		wg.Go(func() {
			streams[k], worst[k], errs[k] = roundTripScene(w, h, frames, 11*k)
		})
	}
	wg.Wait()
	for k := range encoders {
		if errs[k] != nil {
			t.Fatalf("encoder %d: %v", k, errs[k])
		}
		if !bytes.Equal(streams[k], alone[k]) {
			t.Fatalf("encoder %d: its %d-byte stream differs from the %d bytes it makes alone", k, len(streams[k]), len(alone[k]))
		}
		if worst[k] < 25 {
			t.Fatalf("encoder %d: worst PSNR %.1f dB against its own scene", k, worst[k])
		}
	}
}

// roundTripScene encodes frames of encodetest.Scene from phase on with
// libx264 (one thread: deterministic) and decodes each, and returns the
// stream and the worst PSNR against the source.
func roundTripScene(w, h, frames, phase int) ([]byte, float64, error) {
	enc, err := encode.NewVideoEncoder(encode.VideoConfig{Width: w, Height: h})
	if err != nil {
		return nil, 0, err
	}
	defer enc.Close()
	dec, err := encode.NewVideoDecoder(encode.BackendX264.Codec())
	if err != nil {
		return nil, 0, err
	}
	defer dec.Close()
	src, got, out := make([]byte, w*h*3), make([]byte, w*h*3), make([]byte, 1<<20)
	var stream []byte
	worst, decoded := 99.0, 0
	for i := range frames {
		encodetest.Scene(src, w, h, phase+i)
		n, _, err := enc.Encode(encode.Image{Pix: src, Width: w, Height: h}, int64(i*3000), out)
		if err != nil {
			return nil, 0, err
		}
		stream = append(stream, out[:n]...)
		if err := dec.Decode(out[:n], func(f encode.Frame) error {
			if _, err := f.RGB(got); err != nil {
				return err
			}
			decoded++
			worst = min(worst, encodetest.PSNR(src, got))
			return nil
		}); err != nil {
			return nil, 0, err
		}
	}
	if decoded != frames {
		return nil, 0, fmt.Errorf("decoded %d of %d frames", decoded, frames)
	}
	return stream, worst, nil
}
