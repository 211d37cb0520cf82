package main

import (
	"os"
	"strings"
	"testing"
)

// The CUDA image is built with `COPY . .` from a working tree: build/
// (FFmpeg's prefix with host paths in its .pc files), node_modules, the
// page bundle and test binaries must stay out of it (defect 9: there was
// no .dockerignore).
func TestDockerignoreKeepsBuildOutputsOut(t *testing.T) {
	b, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatalf("no .dockerignore beside Dockerfile.cuda: %v", err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			have[line] = true
		}
	}
	for _, want := range []string{"build", "**/node_modules", "cmd/framewire/web/dist", "**/*.test", "cmd/libframewire/python/framewire/_lib", "cmd/libframewire/python/framewire/web"} {
		if !have[want] {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}
