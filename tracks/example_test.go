package tracks_test

import (
	"context"
	"fmt"
	"time"

	"github.com/framewire/framewire/tracks"
)

// A session's tracks as the engine builds them: the model emits to its
// default output and polls its webcam; the pipeline takes frames with Next;
// the transport delivers webcam pictures.
func Example() {
	set, err := tracks.NewSet([]tracks.Spec{
		tracks.VideoInput("webcam"),
		tracks.VideoOutput("main_video", tracks.Default()),
	})
	if err != nil {
		panic(err)
	}
	defer set.Close()

	webcam, _ := set.VideoIn("webcam")
	out, _ := set.VideoOut("") // the default track

	fmt.Println("before any data:", webcam.Latest() == nil)
	_ = webcam.Deliver(make([]byte, 4*2*3), 4, 2, time.Now()) // the transport

	if f := webcam.Latest(); f != nil {
		_ = out.Emit(f.Pix, f.Height, f.Width, 3) // "transform" and emit
	}
	_ = out.Emit(nil) // a 1280×720 black frame

	for range 2 { // the pipeline
		f, _ := out.Next(context.Background())
		fmt.Printf("%s: %dx%d\n", out.Name(), f.Width, f.Height)
		f.Release()
	}
	// Output:
	// before any data: true
	// main_video: 4x2
	// main_video: 1280x720
}

// Resolve applies the declaration rules: no tracks gives main_video.
func ExampleResolve() {
	specs, _ := tracks.Resolve(nil)
	for _, s := range specs {
		fmt.Println(s.Name, s.Kind, s.Kind.Direction(), s.Default)
	}
	// Output: main_video VideoOut recvonly true
}
