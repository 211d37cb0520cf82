package recordtest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine/record"
	"github.com/framewire/framewire/engine/record/recordtest"
)

// Record one second of a live encoder's packets and read the files back
// with FFmpeg's demuxer and aac decoder: what a player appending the init
// segment and the media segment gets.
func Example() {
	dir, _ := os.MkdirTemp("", "recordings")
	defer os.RemoveAll(dir)
	store, err := record.OpenStore(record.StoreConfig{Dir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	rec, err := store.NewRecorder("", record.Config{Enabled: true, ChunkSeconds: 1}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan error, 1)
	go func() { done <- rec.Run(context.Background()) }()
	const w, h = 160, 120
	enc, err := encode.NewVideoEncoder(encode.VideoConfig{Backend: encode.BackendX264, Width: w, Height: h})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer enc.Close()
	tap := rec.VideoTap(30)
	pix, out := make([]byte, w*h*3), make([]byte, 1<<20)
	for i := range 30 {
		n, key, err := enc.Encode(encode.Image{Pix: pix, Width: w, Height: h}, int64(i)*3000, out)
		if err != nil {
			fmt.Println(err)
			return
		}
		if tap.Packet(out[:n], key, w, h, time.Second/30) {
			enc.RequestKeyframe()
		}
	}
	_ = rec.Close()
	<-done

	st, err := recordtest.ProbeAudio(recordtest.Segments(filepath.Join(store.Dir(), rec.ID()), 0, 0)...)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %dx%d, %d packets, %.3f s, keyframe first: %v\n", st.Codec, st.Width, st.Height, st.Packets, st.Duration, st.FirstKey)
	fmt.Printf("%s at %d Hz (silent: no audio tap)\n", st.Audio, st.AudioRate)
	// Output:
	// h264 160x120, 30 packets, 1.000 s, keyframe first: true
	// aac at 48000 Hz (silent: no audio tap)
}
