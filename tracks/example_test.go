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

// bufferPool is a model's own pool of output pictures: EmitShared lends
// one to the track, which gives it back through Release once encoded.
type bufferPool chan *pooled

type pooled struct {
	img  tracks.Image
	pool bufferPool
}

func (p *pooled) Release() { p.pool <- p }

// A model that renders into its own buffers emits them without a copy.
func ExampleVideoOut_EmitShared() {
	set, err := tracks.NewSet([]tracks.Spec{tracks.VideoOutput("main_video")})
	if err != nil {
		panic(err)
	}
	defer set.Close()
	out, _ := set.VideoOut("main_video")

	pool := make(bufferPool, 2)
	for range cap(pool) {
		pool <- &pooled{img: tracks.NewImage(64, 36), pool: pool}
	}
	ctx := context.Background()
	for i := range 3 {
		b := <-pool            // waits while every buffer is lent out
		b.img.Pix[0] = byte(i) // "render"
		if err := out.EmitShared(ctx, b.img, b); err != nil {
			panic(err) // b went back to the pool already
		}
		f, _ := out.Next(ctx) // the pipeline
		fmt.Println("encoding frame", f.Pix[0])
		f.Release() // b goes back to the pool
	}
	// Output:
	// encoding frame 0
	// encoding frame 1
	// encoding frame 2
}
