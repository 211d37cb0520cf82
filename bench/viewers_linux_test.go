package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/protocol"
	"github.com/framewire/framewire/engine/wiring"
)

// BenchmarkViewers: one 720p30 session (moving pictures) watched by one
// viewer, then by 1+extra, all on the connection routes. Every viewer is
// bound to the one encoded output, so a further viewer costs only its
// packets (SRTP, interceptors, socket). It reports viewer-cpu-ratio: the
// server process's CPU per frame that each extra viewer adds, as a
// fraction of the whole one-viewer session's CPU per frame (model,
// encode, send); the target is ≤ 0.05. The receivers run in a
// child process (the test binary, TestMain), so only the server is
// measured.
func BenchmarkViewers(b *testing.B) {
	const extra = 4
	eng, err := engine.New(movingModel(1280, 720))
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	w, err := wiring.New(eng, wiring.Config{})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := protocol.NewServer(w, protocol.Config{
		Peer:        peer.Config{Loopback: true, Interfaces: []string{"lo"}},
		PingTimeout: time.Hour, // the receivers send no data-channel message
	})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	sid, err := srv.Start(context.Background(), protocol.StartOptions{})
	if err != nil {
		b.Fatal(err)
	}
	r, err := startReceivers(1 + extra)
	if err != nil {
		b.Fatal(err)
	}
	defer r.close()
	join := func() {
		var offer string
		if err := r.out.Decode(&offer); err != nil {
			b.Fatal(err)
		}
		code, body := enginetest.Do(b, hs.URL, "POST", "/sessions/"+sid+"/transport/webrtc/connections", nil, enginetest.RTCHeaders)
		var reg struct {
			ID int `json:"connection_id"`
		}
		if code != 201 || json.Unmarshal(body, &reg) != nil {
			b.Fatalf("register: %d %s", code, body)
		}
		route := fmt.Sprintf("/sessions/%s/transport/webrtc/connections/%d/sdp_params", sid, reg.ID)
		mapping := []peer.TrackMapping{{MID: "0", Name: "main_video", Kind: peer.KindVideo, Direction: peer.DirRecvonly}}
		if code, body := enginetest.Do(b, hs.URL, "POST", route, map[string]any{"sdp_offer": offer, "track_mapping": mapping}, enginetest.RTCHeaders); code != 202 {
			b.Fatalf("offer: %d %s", code, body)
		}
		var answer string
		enginetest.Eventually(b, 10*time.Second, "the answer", func() bool {
			code, body := enginetest.Do(b, hs.URL, "GET", route, nil, enginetest.RTCHeaders)
			var a struct {
				SDP string `json:"sdp_answer"`
			}
			if code == 200 && json.Unmarshal(body, &a) == nil {
				answer = a.SDP
			}
			return answer != ""
		})
		line, _ := json.Marshal(answer)
		if _, err := io.WriteString(r.in, string(line)+"\n"); err != nil {
			b.Fatal(err)
		}
	}
	sent := func() uint64 {
		for _, st := range w.Stats() {
			if st.ID == sid && len(st.Video) == 1 {
				return st.Video[0].Sent
			}
		}
		return 0
	}
	perFrame := func() time.Duration {
		const frames = 90
		s0, c0 := sent(), cpuTime()
		enginetest.Eventually(b, 30*time.Second, "frames sent", func() bool { return sent() >= s0+frames })
		return (cpuTime() - c0) / time.Duration(sent()-s0)
	}
	join()
	enginetest.Eventually(b, 15*time.Second, "the first viewer connected", func() bool {
		return srv.Sessions()[0].Peer.Connected && sent() > 30
	})
	var one, more time.Duration
	b.ResetTimer()
	for range b.N {
		one += perFrame()
	}
	b.StopTimer()
	for range extra {
		join()
	}
	enginetest.Eventually(b, 15*time.Second, "every viewer connected", func() bool {
		c, err := r.counts()
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range c {
			if n == 0 {
				return false
			}
		}
		return true
	})
	b.StartTimer()
	for range b.N {
		more += perFrame()
	}
	b.StopTimer()
	if n := len(w.Stats()[0].Video); n != 1 {
		b.Fatalf("%d video pipelines for %d viewers; want 1", n, 1+extra)
	}
	b.ReportMetric(float64(more-one)/extra/float64(one), "viewer-cpu-ratio")
}
