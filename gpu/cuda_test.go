//go:build cuda

package gpu

// GPU tests: they need an NVIDIA driver and GPU (a cuda binary exits at
// init without one). Build and package them with `make gpu-check`; run
// build/gpu-check/run.sh on the GPU host.

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/encode/encodetest"
	"gorgonia.org/cu"
)

// emulated reports whether d is the emulated driver of gpu/cudaemu (no
// NVENC, no NVDEC: the tests assert the fallbacks there), unless it was
// told to pass for a real device (FW_CUDAEMU_DEVICE_NAME).
func emulated(d *Device) bool { return strings.HasPrefix(d.Name(), "cudaemu") }

// underEmulator reports whether the driver is the emulator, whatever name
// it gives its device: it sizes loops (the emulator runs kernels on a CPU
// thread).
func underEmulator() bool { return EmulatorStat("primary_activations") >= 0 }

// noNVDEC reports whether err says NVDEC is unavailable because
// libnvcuvid.so.1 is not installed: a GPU host without the driver's video
// libraries (or a container started without the video capability), where
// NVDEC tests skip rather than fail.
func noNVDEC(err error) bool { return errors.Is(err, ErrUnavailable) && !libPresent(libNVDEC) }

// newDecoderOrSkip opens an NVDEC decoder, or skips the test with the
// reason where NVDEC is unavailable (the emulated driver: there the
// reason must name the missing library).
func newDecoderOrSkip(t *testing.T, d *Device) *Decoder {
	t.Helper()
	dec, err := NewDecoder(d)
	if errors.Is(err, ErrUnavailable) {
		if emulated(d) && !strings.Contains(err.Error(), "libnvcuvid.so.1") {
			t.Errorf("NVDEC unavailable under the emulated driver, but the reason does not name libnvcuvid.so.1: %v", err)
		}
		t.Skipf("NVDEC unavailable on %s: %v", d.Name(), err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dec
}

func openDevice(tb testing.TB) *Device {
	tb.Helper()
	d, err := Open(0)
	if err != nil {
		tb.Fatalf("open CUDA device 0: %v", err)
	}
	tb.Cleanup(func() {
		if err := d.Close(); err != nil {
			tb.Errorf("close device: %v", err)
		}
	})
	return d
}

// upload copies b into a new device buffer.
func upload(tb testing.TB, d *Device, b []byte) *Buffer {
	tb.Helper()
	buf, err := d.Alloc(len(b))
	if err != nil {
		tb.Fatal(err)
	}
	if err := buf.Upload(b); err != nil {
		tb.Fatal(err)
	}
	return buf
}

// reusable is a device task that allocates nothing per submission.
type reusable struct {
	f    func() error
	err  error
	done chan struct{}
}

func (r *reusable) run() { r.err = r.f(); r.done <- struct{}{} }

func newReusable(f func() error) *reusable { return &reusable{f: f, done: make(chan struct{}, 1)} }

func (r *reusable) do(d *Device) error {
	if err := d.submit(r); err != nil {
		return err
	}
	<-r.done
	return r.err
}

// withStream runs f on the device goroutine with a fresh stream.
func withStream(d *Device, f func(s *stream) error) error {
	return d.Do(func() error {
		var s stream
		if err := s.open(); err != nil {
			return err
		}
		defer s.close()
		if err := f(&s); err != nil {
			return err
		}
		return s.sync()
	})
}

func TestDeviceDoReturnsEachCallsError(t *testing.T) {
	d := openDevice(t)
	t.Logf("device 0: %s", d.Name())
	boom := errors.New("boom")
	if err := d.Do(func() error { return boom }); err != boom {
		t.Errorf("Do = %v, want boom", err)
	}
	if err := d.Do(func() error { return nil }); err != nil {
		t.Errorf("Do after a failed Do = %v, want nil", err)
	}
	free, total, err := d.MemInfo()
	if err != nil || free <= 0 || total < free {
		t.Errorf("MemInfo = %d, %d, %v", free, total, err)
	}
}

// FFmpeg's CUDA device opens on the primary context Open retained. With
// AV_CUDA_USE_PRIMARY_CONTEXT it never did: the context is active with
// flags 0 and FFmpeg wants CU_CTX_SCHED_BLOCKING_SYNC ("Primary context
// already active with incompatible flags", ENOTSUP), so no NVDEC and no
// NVENC anywhere (the emulated driver keeps the flags as the driver does).
func TestFFmpegCUDADeviceOnPrimaryContext(t *testing.T) {
	d := openDevice(t)
	if err := d.Do(func() error { _, err := d.hwDevice(); return err }); err != nil {
		t.Fatalf("FFmpeg CUDA device on the primary context: %v", err)
	}
}

func TestDeviceCloseClosesChildren(t *testing.T) {
	d, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := d.Alloc(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewEncoder(d, EncoderConfig{Width: 64, Height: 64}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := buf.Close(); err != nil {
		t.Errorf("Buffer.Close after Device.Close: %v", err)
	}
	f := Frame{Ptr: buf.Ptr(), Width: 64, Height: 64, Format: RGB24}
	if _, _, err := enc.Encode(f, 0, make([]byte, 1<<16)); !errors.Is(err, ErrClosed) {
		t.Errorf("Encode after Device.Close: %v, want ErrClosed", err)
	}
	if err := d.Do(func() error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Do after Close: %v, want ErrClosed", err)
	}
}

// The RGB→NV12 kernel equals the CPU reference (±2; the same integer
// arithmetic makes it exact in practice) for RGB24 and RGBA, even and odd
// sizes, pitched sources and a picture inside a batch.
func TestKernelRGBToNV12MatchesReference(t *testing.T) {
	d := openDevice(t)
	for _, tc := range []struct {
		w, h   int
		format PixelFormat
		pad    int // extra bytes per row
		index  int // picture of a 2-batch
	}{
		{1280, 720, RGB24, 0, 0},
		{1280, 720, RGBA, 0, 0},
		{321, 241, RGB24, 64, 1},
		{333, 200, RGBA, 12, 1},
	} {
		t.Run(fmt.Sprintf("%dx%d-%v-pad%d-at%d", tc.w, tc.h, tc.format, tc.pad, tc.index), func(t *testing.T) {
			bpp := tc.format.BytesPerPixel()
			pitch := tc.w*bpp + tc.pad
			pic := [2][]byte{testImage(tc.w, tc.h, bpp, 11), testImage(tc.w, tc.h, bpp, 200)}
			host := make([]byte, 2*pitch*tc.h)
			for i := range 2 {
				for row := 0; row < tc.h; row++ {
					copy(host[(i*tc.h+row)*pitch:], pic[i][row*tc.w*bpp:(row+1)*tc.w*bpp])
				}
			}
			src := upload(t, d, host)
			ow, oh := even(tc.w), even(tc.h)
			dst, err := d.Alloc(ow * oh * 3 / 2)
			if err != nil {
				t.Fatal(err)
			}
			batch := Frame{Ptr: src.Ptr(), Pitch: pitch, Width: tc.w, Height: tc.h, Format: tc.format, Count: 2}
			f, err := batch.At(tc.index)
			if err != nil {
				t.Fatal(err)
			}
			if err := withStream(d, func(s *stream) error {
				return d.toNV12(s, f, dst.Ptr(), ow, dst.Ptr()+uintptr(ow*oh), ow, ow, oh)
			}); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, ow*oh*3/2)
			if err := dst.Download(got); err != nil {
				t.Fatal(err)
			}
			y, uv := refRGBToNV12(pic[tc.index], tc.w*bpp, bpp, tc.w, tc.h, ow, oh)
			if dy, at := maxDiff(got[:ow*oh], y); dy > 2 {
				t.Errorf("luma differs from the reference by %d at (%d,%d)", dy, at%ow, at/ow)
			}
			if dc, at := maxDiff(got[ow*oh:], uv); dc > 2 {
				t.Errorf("chroma differs from the reference by %d at byte %d of the UV plane", dc, at)
			}
		})
	}
}

// The NV12→RGB kernel equals the CPU reference (±2) for RGB24 and RGBA
// output with a pitched destination.
func TestKernelNV12ToRGBMatchesReference(t *testing.T) {
	d := openDevice(t)
	const w, h = 1280, 720
	y, uv := refRGBToNV12(testImage(w, h, 3, 33), w*3, 3, w, h, w, h)
	src := upload(t, d, append(append([]byte(nil), y...), uv...))
	for _, format := range []PixelFormat{RGB24, RGBA} {
		bpp := format.BytesPerPixel()
		pitch := w*bpp + 32
		dst, err := d.Alloc(pitch * h)
		if err != nil {
			t.Fatal(err)
		}
		f := Frame{Ptr: dst.Ptr(), Pitch: pitch, Width: w, Height: h, Format: format}
		if err := withStream(d, func(s *stream) error {
			return d.toRGB(s, src.Ptr(), w, src.Ptr()+uintptr(w*h), w, f)
		}); err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, pitch*h)
		if err := dst.Download(raw); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 0, w*h*bpp)
		for row := 0; row < h; row++ {
			got = append(got, raw[row*pitch:row*pitch+w*bpp]...)
		}
		want := refNV12ToRGB(y, w, uv, w, w, h, bpp)
		if dd, at := maxDiff(got, want); dd > 2 {
			t.Errorf("%v: differs from the reference by %d at pixel (%d,%d) channel %d", format, dd, at/bpp%w, at/bpp/w, at%bpp)
		}
	}
}

// NVDEC round trip: a libx264 stream decoded by NVDEC and converted by the
// kernel into the pinned latest buffer equals FFmpeg's software decode
// converted by the CPU reference (±2) and matches the source (PSNR >= 35
// dB); the device-side latest equals the host-side latest.
func TestNVDECRoundTrip(t *testing.T) {
	d := openDevice(t)
	const w, h, n = 640, 360, 30
	aus, pics, _ := x264Stream(t, w, h, n)
	soft := newSoftDecoder(t)
	dec := newDecoderOrSkip(t, d)
	defer dec.Close()
	if _, _, _, err := dec.Latest(make([]byte, w*h*3)); !errors.Is(err, ErrNoFrame) {
		t.Errorf("Latest before any picture: %v, want ErrNoFrame", err)
	}
	got := make([]byte, w*h*3)
	devOut, err := d.Alloc(w * h * 3)
	if err != nil {
		t.Fatal(err)
	}
	fromDev := make([]byte, w*h*3)
	worst := 1000.0
	for i, au := range aus {
		k, err := dec.Decode(au)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if k != 1 {
			t.Fatalf("frame %d: Decode returned %d pictures, want 1 (no decoder delay)", i, k)
		}
		gw, gh, seq, err := dec.Latest(got)
		if err != nil {
			t.Fatal(err)
		}
		if gw != w || gh != h || seq != uint64(i+1) {
			t.Fatalf("frame %d: Latest = %dx%d seq %d, want %dx%d seq %d", i, gw, gh, seq, w, h, i+1)
		}
		nv := soft.decode(t, au)[0]
		if dd, at := maxDiff(got, refNV12ToRGB(nv[:w*h], w, nv[w*h:], w, w, h, 3)); dd > 2 {
			t.Errorf("frame %d: NVDEC+kernel differs from software decode + CPU reference by %d at byte %d", i, dd, at)
		}
		p := encodetest.PSNR(pics[i], got)
		worst = min(worst, p)
		if p < 35 {
			t.Errorf("frame %d: PSNR %.1f dB, want >= 35", i, p)
		}
		if i == n-1 {
			if err := dec.LatestDevice(Frame{Ptr: devOut.Ptr(), Width: w, Height: h, Format: RGB24}); err != nil {
				t.Fatal(err)
			}
			if err := devOut.Download(fromDev); err != nil {
				t.Fatal(err)
			}
			if dd, at := maxDiff(fromDev, got); dd != 0 {
				t.Errorf("device latest differs from host latest by %d at byte %d", dd, at)
			}
		}
	}
	t.Logf("NVDEC 640x360 round trip: worst PSNR %.1f dB over %d frames", worst, n)
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := dec.Decode(aus[0]); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := dec.Latest(got); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode+Latest allocate %.1f times per frame, want 0", allocs)
	}
}

// roundTrip encodes n device pictures with enc and decodes the stream with
// FFmpeg's software decoder (BT.709 reference conversion); it returns the
// worst PSNR against the source.
func roundTrip(t *testing.T, d *Device, enc *Encoder, w, h, n int, format PixelFormat) float64 {
	t.Helper()
	bpp := format.BytesPerPixel()
	var pics [][]byte
	var bufs []*Buffer
	for i := range n {
		pic := testImage(w, h, bpp, 5*i)
		pics = append(pics, pic)
		bufs = append(bufs, upload(t, d, pic))
	}
	soft := newSoftDecoder(t)
	out := make([]byte, 1<<21)
	decoded := 0
	worst := 1000.0
	feed := func(m int) {
		if m == 0 {
			return
		}
		for _, nv := range soft.decode(t, out[:m]) {
			if len(nv) != w*h*3/2 {
				t.Fatalf("decoded %d bytes of NV12, want %dx%d", len(nv), w, h)
			}
			rgb := refNV12ToRGB(nv[:w*h], w, nv[w*h:], w, w, h, 3)
			src := pics[decoded]
			if bpp == 4 {
				src = make([]byte, 0, w*h*3)
				for px := 0; px < w*h; px++ {
					src = append(src, pics[decoded][4*px:4*px+3]...)
				}
			}
			worst = min(worst, encodetest.PSNR(src, rgb))
			decoded++
		}
	}
	for i := range n {
		f := Frame{Ptr: bufs[i].Ptr(), Width: w, Height: h, Format: format}
		m, key, err := enc.Encode(f, int64(i)*3000, out)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if i == 0 && m > 0 && !key {
			t.Errorf("first packet is not a keyframe")
		}
		feed(m)
	}
	m, _, err := enc.Flush(out)
	if err != nil {
		t.Fatal(err)
	}
	feed(m)
	if decoded != n {
		t.Fatalf("decoded %d pictures of %d", decoded, n)
	}
	return worst
}

// The no-NVENC path end to end: device frame → kernel → NV12 → pinned →
// libx264 → H.264 → FFmpeg decode, PSNR >= 30 dB; plain and pipelined,
// RGB24 and RGBA.
func TestEncoderX264EndToEnd(t *testing.T) {
	d := openDevice(t)
	const w, h, n = 640, 360, 30
	for _, tc := range []struct {
		format    PixelFormat
		pipelined bool
	}{{RGB24, false}, {RGBA, false}, {RGB24, true}} {
		t.Run(fmt.Sprintf("%v-pipelined=%v", tc.format, tc.pipelined), func(t *testing.T) {
			enc, err := NewEncoder(d, EncoderConfig{Width: w, Height: h, Backend: BackendX264, Pipelined: tc.pipelined, Bitrate: 4_000_000}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			if enc.Backend() != BackendX264 {
				t.Fatalf("Backend() = %q", enc.Backend())
			}
			p := roundTrip(t, d, enc, w, h, n, tc.format)
			t.Logf("%s: worst PSNR %.1f dB", enc.Backend(), p)
			if p < 30 {
				t.Errorf("worst PSNR %.1f dB, want >= 30", p)
			}
		})
	}
}

// An access unit lost to a short buffer is followed by a keyframe (as in
// package encode), on both backends where they open.
func TestEncoderShortBufferForcesKeyframe(t *testing.T) {
	d := openDevice(t)
	const w, h = 320, 240
	for _, b := range []encode.Backend{BackendX264, BackendNVENC} {
		t.Run(string(b), func(t *testing.T) {
			enc, err := NewEncoder(d, EncoderConfig{Width: w, Height: h, Backend: b}, nil)
			if errors.Is(err, ErrUnavailable) {
				t.Skipf("%s does not open here: %v", b, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			out := make([]byte, 1<<20)
			for i := range 4 {
				src := upload(t, d, testImage(w, h, 3, i))
				f := Frame{Ptr: src.Ptr(), Width: w, Height: h, Format: RGB24}
				buf := out
				if i == 2 {
					buf = out[:4]
				}
				n, key, err := enc.Encode(f, int64(i+1)*3000, buf)
				switch {
				case i == 2 && (!errors.Is(err, ErrShortBuffer) || n <= 4):
					t.Fatalf("frame 2 into 4 bytes: n=%d err=%v, want ErrShortBuffer and the size", n, err)
				case i != 2 && err != nil:
					t.Fatalf("frame %d: %v", i, err)
				case i == 1 && key, i == 3 && !key:
					t.Fatalf("frame %d: key=%v, want a keyframe only after the lost access unit", i, key)
				}
				src.Close()
			}
		})
	}
}

// NVENC zero-copy, where h264_nvenc opens on a CUDA frames context.
func TestEncoderNVENCZeroCopy(t *testing.T) {
	d := openDevice(t)
	const w, h, n = 640, 360, 30
	enc, err := NewEncoder(d, EncoderConfig{Width: w, Height: h, Backend: BackendNVENC, Bitrate: 4_000_000}, nil)
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("no NVENC on %s (H100/H200/A100 have none): %v", d.Name(), err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	p := roundTrip(t, d, enc, w, h, n, RGB24)
	t.Logf("%s: worst PSNR %.1f dB", enc.Backend(), p)
	if p < 30 {
		t.Errorf("worst PSNR %.1f dB, want >= 30", p)
	}
}

// Probing picks a backend and says which. Under the emulated driver it
// falls back to cuda+libx264 and logs why: FFmpeg's "unsupported device"
// where libnvidia-encode.so.1 is the emulator's refusing one (an H100),
// the missing library's name where there is none
// (TestEncoderProbeWithoutNVENCLibrary).
func TestEncoderProbe(t *testing.T) {
	d := openDevice(t)
	var logged bytes.Buffer
	enc, err := NewEncoder(d, EncoderConfig{Width: 320, Height: 240}, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if b := enc.Backend(); b != BackendNVENC && b != BackendX264 {
		t.Fatalf("Backend() = %q", b)
	}
	want := "libnvidia-encode.so.1"
	if libPresent(libNVENC) {
		want = "unsupported device"
	}
	if emulated(d) && (enc.Backend() != BackendX264 || !strings.Contains(logged.String(), want)) {
		t.Errorf("emulated driver: backend %s, log %q; want %s and a reason naming %q", enc.Backend(), logged.String(), BackendX264, want)
	}
	t.Logf("%s: probed backend %s", d.Name(), enc.Backend())
}

// On a GPU host without libnvcuvid.so.1 (the emulated driver passing for
// an H100 in a child process) the NVDEC tests and benchmark skip, and the
// memory-growth test runs its encoder part, instead of failing: three of
// them used to call Fatal there.
func TestDeviceTestsSkipWithoutNVDEC(t *testing.T) {
	d := openDevice(t)
	if !emulated(d) || libPresent(libNVDEC) {
		t.Skip("needs the emulated driver without libnvcuvid.so.1")
	}
	cmd := exec.Command(os.Args[0], "-test.v", "-test.run=^(TestNVDECProbeAtOpen|TestNoDeviceMemoryGrowth|TestNVDECRoundTrip)$",
		"-test.bench=^BenchmarkNVDECToPinnedLatest_720p$", "-test.benchtime=1x")
	cmd.Env = append(os.Environ(), "FW_CUDAEMU_DEVICE_NAME=NVIDIA H100 80GB HBM3 (cudaemu passing for one)")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("NVDEC tests on a GPU without libnvcuvid.so.1: %v\n%s", err, out)
	}
	for _, want := range []string{"--- SKIP: TestNVDECProbeAtOpen", "--- PASS: TestNoDeviceMemoryGrowth", "--- SKIP: TestNVDECRoundTrip", "--- SKIP: BenchmarkNVDECToPinnedLatest_720p"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// Without libnvidia-encode.so.1 (a container started without the video
// capability) the probe names the missing library: TestEncoderProbe in a
// child process whose library path holds only the emulated libcuda.so.1.
func TestEncoderProbeWithoutNVENCLibrary(t *testing.T) {
	d := openDevice(t)
	requireRefusingNVENC(t, d)
	dir := t.TempDir()
	var cuda string
	for _, p := range strings.Split(os.Getenv("LD_LIBRARY_PATH"), ":") {
		if _, err := os.Stat(filepath.Join(p, "libcuda.so.1")); err == nil && cuda == "" {
			cuda = filepath.Join(p, "libcuda.so.1")
		}
	}
	if cuda == "" {
		t.Skip("the emulated libcuda.so.1 is not on LD_LIBRARY_PATH")
	}
	if err := os.Symlink(cuda, filepath.Join(dir, "libcuda.so.1")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEncoderProbe$", "-test.v")
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestEncoderProbe")) {
		t.Fatalf("TestEncoderProbe without libnvidia-encode.so.1: %v\n%s", err, out)
	}
}

// An Encoder created without a size (the engine's form: one per output
// track) opens at the first frame's size with the bitrate set before, says
// which backend encodes only then, and closes twice without error.
func TestEncoderOpensAtFirstFrame(t *testing.T) {
	d := openDevice(t)
	enc, err := NewEncoder(d, EncoderConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := enc.Backend(); b != "" {
		t.Errorf("Backend before the first frame = %q, want empty", b)
	}
	enc.SetBitrate(1_000_000)
	enc.RequestKeyframe()
	const w, h = 320, 240
	src := upload(t, d, testImage(w, h, 3, 7))
	out := make([]byte, 1<<20)
	n, key, err := enc.Encode(Frame{Ptr: src.Ptr(), Width: w, Height: h, Format: RGB24}, 3000, out)
	if err != nil || n == 0 || !key {
		t.Fatalf("first Encode: n=%d key=%v err=%v, want a keyframe", n, key, err)
	}
	if gw, gh := enc.Size(); gw != w || gh != h {
		t.Errorf("Size = %dx%d, want %dx%d", gw, gh, w, h)
	}
	if b := enc.Backend(); b != BackendNVENC && b != BackendX264 {
		t.Errorf("Backend after the first frame = %q", b)
	}
	if enc.cfg.Bitrate != 1_000_000 {
		t.Errorf("opened at %d bit/s, want the 1000000 set before", enc.cfg.Bitrate)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A frame with neither Stream nor Event is ordered after the legacy
// default stream: here its pixels arrive by an asynchronous copy from
// pinned memory on that stream, still in flight (under the emulated
// driver, surely) when Encode is called. The encoder's own stream is
// non-blocking, so without the explicit wait it would read the memory
// before the copy.
func TestEncoderOrdersAfterLegacyStreamProducer(t *testing.T) {
	d := openDevice(t)
	const w, h, n = 320, 240, 6
	enc, err := NewEncoder(d, EncoderConfig{Width: w, Height: h, Backend: BackendX264, Bitrate: 4_000_000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	buf, err := d.Alloc(w * h * 3)
	if err != nil {
		t.Fatal(err)
	}
	pin, err := d.AllocPinned(w * h * 3)
	if err != nil {
		t.Fatal(err)
	}
	soft := newSoftDecoder(t)
	out := make([]byte, 1<<20)
	for i := range n {
		pic := testImage(w, h, 3, 40*i)
		copy(pin.Bytes(), pic)
		if err := d.Do(func() error {
			return cu.MemcpyHtoDAsync(cu.DevicePtr(buf.Ptr()), unsafe.Pointer(&pin.Bytes()[0]), int64(w*h*3), cu.Stream{})
		}); err != nil {
			t.Fatal(err)
		}
		m, _, err := enc.Encode(Frame{Ptr: buf.Ptr(), Width: w, Height: h, Format: RGB24}, int64(i+1)*3000, out)
		if err != nil {
			t.Fatal(err)
		}
		for _, nv := range soft.decode(t, out[:m]) {
			rgb := refNV12ToRGB(nv[:w*h], w, nv[w*h:], w, w, h, 3)
			if p := encodetest.PSNR(pic, rgb); p < 30 {
				t.Fatalf("picture %d: PSNR %.1f dB against what the legacy stream wrote: the kernel read before the copy", i, p)
			}
		}
	}
}

// Host RGB through the device encoder (EncodeRGB: pinned copy, upload on
// the legacy stream, kernel, the probed backend) decodes to the source,
// with a padded stride and from the first frame (the Encoder opens then).
// EncodesHostFrames, which tells the pipeline to send host frames here, is
// true only where h264_nvenc opens: never under the emulated driver.
func TestEncoderEncodeRGB(t *testing.T) {
	d := openDevice(t)
	enc, err := NewEncoder(d, EncoderConfig{Bitrate: 4_000_000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if emulated(d) && enc.EncodesHostFrames() {
		t.Error("EncodesHostFrames under the emulated driver (no NVENC)")
	}
	const w, h, n = 320, 240, 8
	const stride = w*3 + 16
	soft := newSoftDecoder(t)
	out := make([]byte, 1<<20)
	host := make([]byte, stride*h)
	for i := range n {
		pic := testImage(w, h, 3, 30*i)
		for row := range h {
			copy(host[row*stride:], pic[row*w*3:(row+1)*w*3])
		}
		m, _, err := enc.EncodeRGB(host, w, h, stride, int64(i+1)*3000, out)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		for row := range h { // the caller may reuse its memory at once
			copy(host[row*stride:], make([]byte, w*3))
		}
		for _, nv := range soft.decode(t, out[:m]) {
			if p := encodetest.PSNR(pic, refNV12ToRGB(nv[:w*h], w, nv[w*h:], w, w, h, 3)); p < 30 {
				t.Fatalf("frame %d: PSNR %.1f dB", i, p)
			}
		}
	}
	if _, _, err := enc.EncodeRGB(host[:10], w, h, stride, 0, out); !errors.Is(err, ErrBadFrame) {
		t.Errorf("short host picture: %v, want ErrBadFrame", err)
	}
}

// NVDEC is probed at open: FFmpeg sets its hwaccel up only at the first
// SPS, so a decoder that opened without NVDEC (no libnvcuvid.so.1) used to
// fail every frame ("Invalid data found") instead of letting the caller
// decode on the CPU. Where NVDEC works, the probe leaves no picture.
func TestNVDECProbeAtOpen(t *testing.T) {
	d := openDevice(t)
	dec, err := NewDecoder(d)
	if emulated(d) {
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "libnvcuvid.so.1") {
			t.Fatalf("NewDecoder under the emulated driver (no NVDEC): %v, want ErrUnavailable naming libnvcuvid.so.1", err)
		}
		_, err2 := NewDecoder(d)
		if err2 == nil || err2.Error() != err.Error() {
			t.Errorf("second NewDecoder: %v, want the cached probe result %v", err2, err)
		}
		return
	}
	if noNVDEC(err) {
		t.Skipf("no NVDEC on %s: %v", d.Name(), err)
	}
	if err != nil {
		t.Fatalf("NewDecoder on %s: %v", d.Name(), err)
	}
	defer dec.Close()
	if _, _, _, err := dec.Latest(make([]byte, 64*64*3)); !errors.Is(err, ErrNoFrame) {
		t.Errorf("Latest after open: %v, want ErrNoFrame (the probe picture must not leak)", err)
	}
}

// 10,000 frames through the probed encoder and the NVDEC decoder leave
// device memory where it was, and allocate no Go memory per frame.
func TestNoDeviceMemoryGrowth(t *testing.T) {
	d := openDevice(t)
	const w, h = 320, 240
	enc, err := NewEncoder(d, EncoderConfig{Width: w, Height: h}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	dec, err := NewDecoder(d)
	if err != nil && !(emulated(d) && errors.Is(err, ErrUnavailable)) && !noNVDEC(err) {
		t.Fatal(err)
	}
	if dec != nil {
		defer dec.Close()
	} else {
		t.Logf("no NVDEC on %s: encoder only (%v)", d.Name(), err)
	}
	src := upload(t, d, testImage(w, h, 3, 1))
	var df DeviceFrame = Frame{Ptr: src.Ptr(), Width: w, Height: h, Format: RGB24}
	out := make([]byte, 1<<20)
	rgb := make([]byte, w*h*3)
	pts := int64(0)
	step := func() {
		pts += 3000
		m, _, err := enc.Encode(df, pts, out)
		if err != nil {
			t.Fatal(err)
		}
		if dec == nil {
			return
		}
		if _, err := dec.Decode(out[:m]); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := dec.Latest(rgb); err != nil {
			t.Fatal(err)
		}
	}
	for range 200 {
		step()
	}
	before, _, err := d.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	frames := 10_000
	if underEmulator() {
		frames = 300 // the emulator runs kernels on one CPU thread: this checks plumbing, not endurance
	}
	for range frames {
		step()
	}
	after, _, err := d.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: device free memory %d → %d bytes over %d frames", enc.Backend(), before, after, frames)
	if before-after > 1<<20 {
		t.Errorf("device memory grew by %d bytes over %d frames", before-after, frames)
	}
	if a := testing.AllocsPerRun(100, step); a != 0 {
		t.Errorf("Encode+Decode+Latest allocate %.1f times per frame, want 0", a)
	}
}

// p50 reports the median of ds in microseconds.
func p50(ds []time.Duration) float64 {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return float64(ds[len(ds)/2].Nanoseconds()) / 1e3
}

// 1280x720 RGB24 → NV12 on the device, kernel only (launch + stream sync).
func BenchmarkRGBToNV12_720p(b *testing.B) {
	d := openDevice(b)
	const w, h = 1280, 720
	src := upload(b, d, testImage(w, h, 3, 0))
	dst, err := d.Alloc(w * h * 3 / 2)
	if err != nil {
		b.Fatal(err)
	}
	f := Frame{Ptr: src.Ptr(), Width: w, Height: h, Format: RGB24}
	var s stream
	if err := d.Do(s.open); err != nil {
		b.Fatal(err)
	}
	defer d.Do(func() error { s.close(); return nil })
	op := newReusable(func() error {
		if err := d.toNV12(&s, f, dst.Ptr(), w, dst.Ptr()+w*h, w, w, h); err != nil {
			return err
		}
		return s.sync()
	})
	ds := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if err := op.do(d); err != nil {
			b.Fatal(err)
		}
		ds[i] = time.Since(t0)
	}
	b.StopTimer()
	b.ReportMetric(p50(ds), "p50-µs")
}

// The 1280x720 NV12 picture (1.38 MB) from device to pinned host memory.
func BenchmarkCopyNV12ToPinned_720p(b *testing.B) {
	d := openDevice(b)
	const n = 1280 * 720 * 3 / 2
	src, err := d.Alloc(n)
	if err != nil {
		b.Fatal(err)
	}
	pin, err := d.AllocPinned(n)
	if err != nil {
		b.Fatal(err)
	}
	var s stream
	if err := d.Do(s.open); err != nil {
		b.Fatal(err)
	}
	defer d.Do(func() error { s.close(); return nil })
	op := newReusable(func() error {
		if err := copyToPinned(&s, pin, src); err != nil {
			return err
		}
		return s.sync()
	})
	ds := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.SetBytes(n)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if err := op.do(d); err != nil {
			b.Fatal(err)
		}
		ds[i] = time.Since(t0)
	}
	b.StopTimer()
	b.ReportMetric(p50(ds), "p50-µs")
}

// One device frame through the probed encoder at 1280x720 (kernel, and
// for libx264 the copy to pinned memory and the CPU encode).
func BenchmarkEncode_720p(b *testing.B) {
	d := openDevice(b)
	const w, h = 1280, 720
	src := upload(b, d, testImage(w, h, 3, 0))
	enc, err := NewEncoder(d, EncoderConfig{Width: w, Height: h}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	var df DeviceFrame = Frame{Ptr: src.Ptr(), Width: w, Height: h, Format: RGB24}
	out := make([]byte, 1<<21)
	ds := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if _, _, err := enc.Encode(df, int64(i+1)*3000, out); err != nil {
			b.Fatal(err)
		}
		ds[i] = time.Since(t0)
	}
	b.StopTimer()
	b.ReportMetric(p50(ds), "p50-µs")
	b.Logf("backend %s", enc.Backend())
}

// One 1280x720 H.264 access unit: NVDEC → kernel → RGB24 → pinned latest.
func BenchmarkNVDECToPinnedLatest_720p(b *testing.B) {
	d := openDevice(b)
	const w, h, n = 1280, 720, 60
	aus, _, _ := x264Stream(b, w, h, n) // frame 0 is an IDR: cycling restarts cleanly
	dec, err := NewDecoder(d)
	if noNVDEC(err) || (emulated(d) && errors.Is(err, ErrUnavailable)) {
		b.Skipf("no NVDEC on %s: %v", d.Name(), err)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Close()
	ds := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if _, err := dec.Decode(aus[i%n]); err != nil {
			b.Fatal(err)
		}
		ds[i] = time.Since(t0)
	}
	b.StopTimer()
	b.ReportMetric(p50(ds), "p50-µs")
}
