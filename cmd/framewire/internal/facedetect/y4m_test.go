package facedetect

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// megamindY4M is the face video `make test` prepares (.ci/deps.sh
// facevideo): Debian opencv-doc's Megamind.avi as yuv420p Y4M, under
// $BUILD (the Makefile exports it) or the repository's build/.
func megamindY4M(t testing.TB) string {
	t.Helper()
	build := os.Getenv("BUILD")
	if build == "" {
		build = filepath.Join("..", "..", "..", "..", "build")
	}
	p := filepath.Join(build, "testdata", "megamind.y4m")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("FRAMEWIRE_E2E") != "" {
			t.Fatalf("%s missing (run `.ci/deps.sh facevideo` or `make test`): %v", p, err)
		}
		t.Skipf("%s missing; `.ci/deps.sh facevideo` (run by make test) makes it", p)
	}
	return p
}

// y4mFrames reads every frame of a 4:2:0 Y4M file as packed RGB24
// (BT.601, limited range, as FFmpeg wrote it).
func y4mFrames(t testing.TB, path string) (frames [][]byte, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	header, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(header, "YUV4MPEG2 ") {
		t.Fatalf("%s: not a Y4M file (%q, %v)", path, header, err)
	}
	for _, tok := range strings.Fields(header)[1:] {
		switch tok[0] {
		case 'W':
			w, _ = strconv.Atoi(tok[1:])
		case 'H':
			h, _ = strconv.Atoi(tok[1:])
		}
	}
	yuv := make([]byte, w*h+2*((w+1)/2)*((h+1)/2))
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			return frames, w, h
		}
		if err != nil || !strings.HasPrefix(line, "FRAME") {
			t.Fatalf("%s: frame %d header %q: %v", path, len(frames), line, err)
		}
		if _, err := io.ReadFull(r, yuv); err != nil {
			t.Fatalf("%s: frame %d: %v", path, len(frames), err)
		}
		frames = append(frames, yuvToRGB(yuv, w, h))
	}
}

func yuvToRGB(yuv []byte, w, h int) []byte {
	cw := (w + 1) / 2
	u, v := yuv[w*h:], yuv[w*h+cw*((h+1)/2):]
	rgb := make([]byte, w*h*3)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := (int(yuv[y*w+x]) - 16) * 298
			d, e := int(u[(y/2)*cw+x/2])-128, int(v[(y/2)*cw+x/2])-128
			p := rgb[(y*w+x)*3:]
			p[0] = clamp8((c + 409*e + 128) >> 8)
			p[1] = clamp8((c - 100*d - 208*e + 128) >> 8)
			p[2] = clamp8((c + 516*d + 128) >> 8)
		}
	}
	return rgb
}

func clamp8(v int) byte { return byte(max(0, min(255, v))) }
