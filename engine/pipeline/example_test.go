package pipeline_test

import (
	"context"
	"fmt"
	"time"

	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/tracks"
)

// Run a video pipeline from an output track to a sink that counts
// keyframes, and stop it.
func Example() {
	set, err := tracks.NewSet([]tracks.Spec{tracks.VideoOutput("main_video", tracks.Backpressure())})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer set.Close()
	out, _ := set.VideoOut("main_video")

	sent := make(chan bool, 1)
	sink := pipeline.SinkFunc(func(au []byte, d time.Duration, capture time.Time, key bool) error {
		sent <- key
		return nil
	})
	v, err := pipeline.NewVideo(out, sink, pipeline.VideoConfig{}) // libx264, system clock
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()

	_ = out.Emit(make([]byte, 64*48*3), 48, 64, 3) // one black 64×48 frame
	fmt.Println("first frame is a keyframe:", <-sent)
	_ = out.Emit(make([]byte, 64*48*3), 48, 64, 3)
	fmt.Println("second frame is a keyframe:", <-sent)

	cancel()
	<-done
	fmt.Println("backend:", v.Stats().Backend, "sent:", v.Stats().Sent)
	// Output:
	// first frame is a keyframe: true
	// second frame is a keyframe: false
	// backend: libx264 sent: 2
}
