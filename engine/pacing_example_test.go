package engine_test

import (
	"context"
	"fmt"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/tracks"
)

// Who paces: the engine. The model emits as fast as it produces; Emit
// never waits for the network. A queue nobody drains (here: no client has
// connected yet, so no pipeline reads it) keeps the newest frames and
// counts the dropped ones. With a declared Rate, the engine's pipeline
// sends at most that many frames a second and skips (counting) frames a
// newer one overtook, so a model faster than its rate needs no sleep.
func Example_pacing() {
	done := make(chan struct{})
	e, err := engine.New(engine.Model{
		Name:   "fast",
		Tracks: []tracks.Spec{tracks.VideoOutput("main_video", tracks.Rate(30), tracks.QueueSize(4))},
		New: func(engine.Config) (engine.Runner, error) {
			return engine.RunFunc(func(ctx context.Context, s *engine.Session) error {
				out, _ := s.VideoOut("")
				img := tracks.NewImage(64, 48)
				for range 10 { // no sleep: as fast as the model produces
					if err := out.EmitImage(ctx, img); err != nil {
						return nil
					}
				}
				close(done)
				<-ctx.Done()
				return nil
			}), nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	s, _ := e.StartSession(context.Background())
	defer s.Stop("example over")
	<-done
	st := s.Stats().Tracks["main_video"]
	fmt.Printf("emitted %d, queued %d of %d, dropped %d (oldest first)\n", st.Emitted, st.QueueDepth, st.QueueCap, st.Dropped)
	// Output:
	// emitted 10, queued 4 of 4, dropped 6 (oldest first)
}
