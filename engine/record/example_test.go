package record_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine/record"
)

// Record one second of a live encoder's packets in 1 s chunks and ask for
// the playlist of the whole recording. In a server, wiring.Config's
// Recording and Recordings do this for every session, and
// engine/protocol serves the clip messages and routes.
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
	tap := rec.VideoTap(30) // a 30 fps output
	pix, out := make([]byte, w*h*3), make([]byte, 1<<20)
	for i := range 30 {
		n, key, err := enc.Encode(encode.Image{Pix: pix, Width: w, Height: h}, int64(i)*3000, out)
		if err != nil {
			fmt.Println(err)
			return
		}
		if tap.Packet(out[:n], key, w, h, time.Second/30) {
			enc.RequestKeyframe() // a segment boundary comes next
		}
	}
	clip, _ := rec.Recording("")
	fmt.Println("recorded:", rec.Now(), "clip:", clip.Kind, clip.StartMarker, clip.EndMarker)

	_ = rec.Close() // the session ended: the last segment closes
	<-done
	code, playlist := store.Playlist(rec.ID(), 0, 1, "")
	fmt.Println(code)
	fmt.Print(playlist[:len("#EXTM3U\n#EXT-X-VERSION:7\n")])
	// Output:
	// recorded: 1s clip: recording 0 1
	// 200
	// #EXTM3U
	// #EXT-X-VERSION:7
}
