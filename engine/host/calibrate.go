package host

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/tracks"
)

// CalibrationEfficiency is the share of the bare-encoder bound a node is
// trusted to serve as full sessions: below the lowest efficiency
// bench/BenchmarkCapacity measured (0.68–0.71 at 640×360, 0.65–0.70 at
// 1280×720 on the 2-core development VM, receivers sharing the cores,
// GOMAXPROCS as UseEncoderProcs sets it), so a calibrated node does not
// admit more sessions than it sustains without dropping frames.
const CalibrationEfficiency = 0.6

// calibrationEncodersPerCore is how many encoders each calibration
// worker takes turns with, a frame at a time, as a node's sessions do:
// past the point where their states fit a core's caches (libx264's cost
// per 720p frame stops rising at 6 a core on the development VM, 3.0 →
// 3.7 ms), so the bound is what many sessions' encodes cost, not one hot
// encoder's.
const calibrationEncodersPerCore = 8

// Calibration is what Calibrate measured: the bound (how many 30 fps
// sessions' worth of pictures bare libx264 encoders, several taking turns
// on each core, encode) and the capacity derived from it.
type Calibration struct {
	Width, Height int           // picture size encoded
	FPS           int           // frame rate of a session
	Workers       int           // threads run at once, one per core (runtime.NumCPU)
	Encoders      int           // encoders in all, taking turns on the workers
	Frames        int           // pictures encoded, all workers together
	Convert       time.Duration // mean RGB → I420 conversion per picture
	Encode        time.Duration // mean libx264 encode per picture, conversion excluded
	Bound         float64       // FPS sessions' worth of bare encodes the workers sustain
	Capacity      int           // max(1, ⌊CalibrationEfficiency × Bound⌋)
}

// Calibrate measures this host's libx264 bound for w×h pictures at fps
// frames per second, the way bench/BenchmarkCapacity measures its bound:
// one worker per core (runtime.NumCPU), each on its own locked thread, its
// calibrationEncodersPerCore encoders taking turns a frame at a time,
// encoding changing pictures with encode's settings for d (warm-up
// excluded) as fast as they can; the encode time excludes the conversion.
// It blocks for about d and returns early with ctx's error when ctx ends.
// It allocates about 10 pictures of w×h and the encoders' state.
func Calibrate(ctx context.Context, w, h, fps int, d time.Duration) (Calibration, error) {
	if w <= 0 || h <= 0 || fps <= 0 || d <= 0 {
		return Calibration{}, fmt.Errorf("calibrate: size %dx%d at %d fps for %v: want positive values", w, h, fps, d)
	}
	pics := calibrationPictures(w, h, 10)
	workers := runtime.NumCPU()
	type result struct {
		frames       int
		conv, encode time.Duration
		err          error
	}
	results := make([]result, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			r := &results[i]
			encs := make([]*encode.VideoEncoder, 0, calibrationEncodersPerCore)
			defer func() {
				for _, e := range encs {
					e.Close()
				}
			}()
			for range calibrationEncodersPerCore {
				enc, err := encode.NewVideoEncoder(encode.VideoConfig{Width: w, Height: h, FPS: fps})
				if err != nil {
					r.err = err
					return
				}
				encs = append(encs, enc)
			}
			out := make([]byte, w*h*3)
			<-start
			deadline := time.Now().Add(d)
			const warmup = 3 // the first keyframe and rate control settling
			for k := 0; ctx.Err() == nil && (k < warmup || time.Now().Before(deadline)); k++ {
				for j, enc := range encs {
					t0 := time.Now()
					if _, _, err := enc.Encode(pics[(k+3*i+j)%len(pics)], int64(k)*90000/int64(fps), out); err != nil {
						r.err = err
						return
					}
					t1 := time.Now()
					if k >= warmup {
						r.frames++
						r.conv += enc.ConvertedAt().Sub(t0)
						r.encode += t1.Sub(enc.ConvertedAt())
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Calibration{}, err
	}
	c := Calibration{Width: w, Height: h, FPS: fps, Workers: workers, Encoders: workers * calibrationEncodersPerCore}
	var conv, enc time.Duration
	for _, r := range results {
		if r.err != nil {
			return Calibration{}, fmt.Errorf("calibrate: %w", r.err)
		}
		if r.frames == 0 || r.encode <= 0 {
			return Calibration{}, errors.New("calibrate: a worker encoded no picture")
		}
		c.Frames += r.frames
		conv, enc = conv+r.conv, enc+r.encode
		c.Bound += float64(r.frames) / r.encode.Seconds() / float64(fps)
	}
	c.Convert = conv / time.Duration(c.Frames)
	c.Encode = enc / time.Duration(c.Frames)
	c.Capacity = max(1, int(math.Floor(CalibrationEfficiency*c.Bound)))
	return c, nil
}

// calibrationPictures are n changing w×h pictures, the pattern of
// bench/BenchmarkCapacity (every pixel changes from one to the next).
func calibrationPictures(w, h, n int) []tracks.Image {
	pics := make([]tracks.Image, n)
	for i := range pics {
		img := tracks.NewImage(w, h)
		for y := range h {
			row := img.Pix[y*img.Stride : y*img.Stride+3*w]
			for x := range w {
				v := (x + 8*i) ^ (y + 4*i)
				row[3*x], row[3*x+1], row[3*x+2] = byte(v), byte(v*3+y), byte(x*7^(y*5+i))
			}
		}
		pics[i] = img
	}
	return pics
}

// parseSize parses "WxH".
func parseSize(s string) (w, h int, err error) {
	ws, hs, ok := strings.Cut(s, "x")
	w, werr := strconv.Atoi(ws)
	h, herr := strconv.Atoi(hs)
	if !ok || werr != nil || herr != nil || w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("size %q: want WIDTHxHEIGHT, both positive (1280x720)", s)
	}
	return w, h, nil
}
