package record

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/record/recordtest"
)

const killDirEnv = "FRAMEWIRE_RECORD_KILL_DIR"

// TestKillChild is the process TestKill9 kills: it records into the
// directory the environment names until it is killed (or 60 s pass).
func TestKillChild(t *testing.T) {
	dir := os.Getenv(killDirEnv)
	if dir == "" {
		t.Skip("run by TestKill9")
	}
	s, err := OpenStore(StoreConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s.NewRecorder("", Config{Enabled: true, ChunkSeconds: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	go rec.Run(context.Background()) // never waited for: the process is killed mid-recording
	f := newFeeder(t, 96, 64)
	tap := rec.VideoTap(30)
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); {
		f.feed(tap, 1)
		time.Sleep(time.Millisecond) // about 30× real time, so the disk keeps up
	}
}

// TestKill9: after kill -9 mid-recording, every segment on disk under its
// own name is whole: init.mp4 and each of them demux as H.264 starting on
// a keyframe, and the run of them demuxes as one stream.
func TestKill9(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), killDirEnv+"="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var chunks []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		chunks, _ = filepath.Glob(filepath.Join(dir, "*", "chunk_*.m4s"))
		if len(chunks) >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // a poll with a deadline: the child is killed whatever it reached, then checked
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	chunks, _ = filepath.Glob(filepath.Join(dir, "*", "chunk_*.m4s"))
	if len(chunks) < 4 {
		t.Fatalf("only %d segments before the kill", len(chunks))
	}
	sort.Strings(chunks)
	init := filepath.Join(filepath.Dir(chunks[0]), "init.mp4")
	for _, c := range chunks {
		st, err := recordtest.Probe(init, c)
		if err != nil || !st.FirstKey || st.Codec != "h264" || st.Packets != 30 {
			t.Fatalf("%s after kill -9: %+v %v", filepath.Base(c), st, err)
		}
	}
	all, err := recordtest.Probe(append([]string{init}, chunks...)...)
	if err != nil || all.Packets != 30*len(chunks) {
		t.Fatalf("segments together: %+v %v", all, err)
	}

	// The next process adopts the recording: served as finished, from
	// its closed segments, half-written files removed.
	s := openStore(t, StoreConfig{Dir: dir})
	id := filepath.Base(filepath.Dir(init))
	code, body := s.Playlist(id, 0, float64(len(chunks)), "")
	if code != 200 || strings.Count(body, "#EXTINF:1.000,") != len(chunks) {
		t.Fatalf("adopted recording: %d\n%s", code, body)
	}
	if code, _, _ := s.Chunk(id, "chunk_00000.m4s"); code != 200 {
		t.Fatalf("adopted segment: %d", code)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "*", "*.tmp")); len(tmp) != 0 {
		t.Fatalf("half-written files kept: %v", tmp)
	}
}
