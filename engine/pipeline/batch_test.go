package pipeline_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/tracks"
)

// batchDevice is a device frame holding n pictures.
type batchDevice struct{ n int }

func (b batchDevice) Size() (int, int) { return 64, 48 }
func (b batchDevice) Frames() int      { return b.n }

// indexEncoder stands in for the GPU encoder: it writes the picture index
// it was asked for as the access unit.
type indexEncoder struct {
	mu    sync.Mutex
	calls []int
}

func (e *indexEncoder) Encode(f tracks.DeviceFrame, pts int64, out []byte) (int, bool, error) {
	return e.EncodeBatch(f, 0, pts, out)
}

func (e *indexEncoder) EncodeBatch(_ tracks.DeviceFrame, index int, _ int64, out []byte) (int, bool, error) {
	e.mu.Lock()
	e.calls = append(e.calls, index)
	e.mu.Unlock()
	out[0] = byte(index)
	return 1, index == 0, nil
}
func (e *indexEncoder) RequestKeyframe() {}
func (e *indexEncoder) SetBitrate(int)   {}

// singleEncoder has no EncodeBatch.
type singleEncoder struct{ indexEncoder }

func (e *singleEncoder) EncodeBatch() {}

// A batch device frame (EmitDevice of N pictures) leaves as N access units,
// picture 0..N-1 in order, spread over the track's rate; a device encoder
// without EncodeBatch drops the batch and counts it.
func TestVideoDeviceBatch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		enc   pipeline.DeviceEncoder
		batch bool
	}{{"batch", &indexEncoder{}, true}, {"single", &singleEncoder{}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			out := videoOut(t, tracks.Rate(100))
			out.SetDeviceSupport(nil)
			sink := newRecordSink(nil)
			v, err := pipeline.NewVideo(out, sink, pipeline.VideoConfig{Device: tc.enc})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- v.Run(ctx) }()
			if err := out.EmitDevice(batchDevice{4}); err != nil {
				t.Fatal(err)
			}
			if tc.batch {
				for range 4 {
					select {
					case <-sink.got:
					case <-time.After(5 * time.Second):
						t.Fatal("batch not sent")
					}
				}
			} else {
				deadline := time.Now().Add(5 * time.Second)
				for v.Stats().DeviceErrors < 4 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
			}
			cancel()
			<-done
			st := v.Stats()
			if !tc.batch {
				if st.DeviceErrors != 4 || st.Sent != 0 {
					t.Fatalf("stats %+v: want 4 device errors, nothing sent", st)
				}
				return
			}
			s := sink.all()
			if len(s) != 4 || st.Sent != 4 {
				t.Fatalf("%d samples, stats %+v; want 4", len(s), st)
			}
			for i, x := range s {
				if x.data[0] != byte(i) {
					t.Errorf("sample %d carries picture %d", i, x.data[0])
				}
				if x.duration <= 0 {
					t.Errorf("sample %d has duration %v", i, x.duration)
				}
			}
		})
	}
}
