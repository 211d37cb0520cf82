package encode_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/encode/encodetest"
	"github.com/framewire/framewire/engine/enginetest/loopback"
)

// The first vertical slice (the encode package's pictures over a real
// WebRTC link; it moved here from engine/peer, whose code it never used): 1280x720 RGB frames are converted with swscale
// and encoded by libx264, written to a pion TrackLocalStaticSample on a real
// PeerConnection over loopback (ICE, DTLS, SRTP), received by a second pion
// peer, depacketized, decoded by FFmpeg and compared with what was sent.
func TestSliceX264OverLoopback(t *testing.T) {
	const (
		w, h   = 1280, 720
		frames = 90
		fps    = 30
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	sender, receiver := loopbackPeers(t)

	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	}, "main_video", "framewire")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sender.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	if _, err := receiver.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}

	type got struct {
		index int
		psnr  float64
		w, h  int
	}
	results := make(chan got, frames*2)
	var wg sync.WaitGroup
	receiver.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wg.Add(1)
		defer wg.Done()
		dec, err := encode.NewVideoDecoder(encode.CodecH264)
		if err != nil {
			t.Error(err)
			return
		}
		defer dec.Close()
		sb := samplebuilder.New(256, &codecs.H264Packet{}, 90000)
		rgb := make([]byte, w*h*3)
		want := make([]byte, w*h*3)
		for {
			pkt, _, err := remote.ReadRTP()
			if err != nil {
				return
			}
			sb.Push(pkt)
			for s := sb.Pop(); s != nil; s = sb.Pop() {
				err := dec.Decode(s.Data, func(f encode.Frame) error {
					fw, fh := f.Size()
					if fw != w || fh != h {
						results <- got{index: -1, w: fw, h: fh}
						return nil
					}
					if _, err := f.RGB(rgb); err != nil {
						return err
					}
					i := readIndex(rgb, w)
					drawFrame(want, w, h, i)
					results <- got{index: i, psnr: encodetest.PSNR(rgb, want), w: fw, h: fh}
					return nil
				})
				if err != nil {
					t.Errorf("decode: %v", err)
				}
			}
		}
	})

	connect(ctx, t, sender, receiver)

	enc, err := encode.NewVideoEncoder(encode.VideoConfig{Backend: encode.BackendX264, Width: w, Height: h, FPS: fps, Bitrate: 4_000_000})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	img := make([]byte, w*h*3)
	out := make([]byte, 4<<20)
	tick := time.NewTicker(time.Second / fps)
	defer tick.Stop()
	for i := 0; i < frames; i++ {
		drawFrame(img, w, h, i)
		n, _, err := enc.Encode(encode.Image{Pix: img, Width: w, Height: h}, int64(i)*90000/fps, out)
		if err != nil {
			t.Fatalf("encode frame %d: %v", i, err)
		}
		if n > 0 {
			if err := track.WriteSample(media.Sample{Data: out[:n], Duration: time.Second / fps}); err != nil {
				t.Fatalf("write sample %d: %v", i, err)
			}
		}
		<-tick.C
	}

	// Collect until frames stop arriving: a frame resets the idle timer,
	// and the cap bounds a stuck run. On a loaded machine, and under -race,
	// decoding 720p lags the real-time sender by seconds, so a fixed
	// deadline after the last send cut off frames still on their way
	// (70-76 of 90 on two busy cores, no loss on the wire).
	const idle, maxWait = 2 * time.Second, 20 * time.Second
	seen := map[int]bool{}
	minPSNR := math.Inf(1)
	sent, last := time.Now(), time.Duration(0)
	idleT := time.NewTimer(idle)
	defer idleT.Stop()
	capT := time.NewTimer(maxWait)
	defer capT.Stop()
collect:
	for len(seen) < frames {
		select {
		case g := <-results:
			idleT.Reset(idle)
			last = time.Since(sent)
			if g.index < 0 {
				t.Fatalf("received a %dx%d frame, want %dx%d", g.w, g.h, w, h)
			}
			if g.index >= frames || seen[g.index] {
				t.Errorf("frame index %d read back twice or out of range: the index strip did not survive", g.index)
				continue
			}
			seen[g.index] = true
			minPSNR = min(minPSNR, g.psnr)
		case <-idleT.C:
			break collect
		case <-capT.C:
			break collect
		}
	}
	if err := sender.Close(); err != nil {
		t.Error(err)
	}
	if err := receiver.Close(); err != nil {
		t.Error(err)
	}
	wg.Wait()
	t.Logf("received %d/%d frames (the last %s after the last send), min PSNR %.1f dB", len(seen), frames, last.Round(time.Millisecond), minPSNR)
	if len(seen) < frames*9/10 {
		t.Errorf("received %d of %d frames, want at least 90%%", len(seen), frames)
	}
	if minPSNR < 30 {
		t.Errorf("min PSNR %.1f dB, want >= 30 dB", minPSNR)
	}
}

// loopbackPeers makes two pion peers that gather only loopback host
// candidates, with the default codecs and interceptors (NACK, RTCP
// reports): the tests' one loopback client configuration.
func loopbackPeers(t *testing.T) (a, b *webrtc.PeerConnection) {
	t.Helper()
	return loopback.NewT(t, loopback.Options{}), loopback.NewT(t, loopback.Options{})
}

// connect runs a non-trickle offer/answer between a (offerer) and b and
// waits until both are connected.
func connect(ctx context.Context, t *testing.T, a, b *webrtc.PeerConnection) {
	t.Helper()
	connected := func(pc *webrtc.PeerConnection) <-chan struct{} {
		ch := make(chan struct{})
		var once sync.Once
		pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
			if s == webrtc.PeerConnectionStateConnected {
				once.Do(func() { close(ch) })
			}
		})
		return ch
	}
	ca, cb := connected(a), connected(b)
	offer, err := a.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(a)
	if err := a.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	if err := b.SetRemoteDescription(*a.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := b.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(b)
	if err := b.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	if err := a.SetRemoteDescription(*b.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan struct{}{ca, cb} {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal(fmt.Errorf("peers did not connect: %w", errors.Join(ctx.Err())))
		}
	}
}

// Frame i is a moving colour gradient with i written as 16 bits of 40x40
// black/white blocks along the top edge, so the receiver can tell which
// frame it decoded whatever was lost.
const codeBits, codeBlock = 16, 40

func drawFrame(p []byte, w, h, i int) {
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			o := (y*w + x) * 3
			p[o] = byte((x + 4*i) * 255 / (w + 400))
			p[o+1] = byte((y + 2*i) * 255 / (h + 200))
			p[o+2] = byte(128 + 100*math.Sin(float64(x+y+8*i)/90))
		}
	}
	for b := 0; b < codeBits; b++ {
		v := byte(0)
		if i>>b&1 == 1 {
			v = 255
		}
		for y := 0; y < codeBlock; y++ {
			for x := b * codeBlock; x < (b+1)*codeBlock; x++ {
				o := (y*w + x) * 3
				p[o], p[o+1], p[o+2] = v, v, v
			}
		}
	}
}

func readIndex(p []byte, w int) int {
	i := 0
	for b := 0; b < codeBits; b++ {
		o := ((codeBlock/2)*w + b*codeBlock + codeBlock/2) * 3
		if p[o] > 128 {
			i |= 1 << b
		}
	}
	return i
}
