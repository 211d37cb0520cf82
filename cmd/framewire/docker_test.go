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

// The CUDA image's final stage (what runs): the runtime picks the GPUs
// (no baked NVIDIA_VISIBLE_DEVICES=all, which takes every GPU of a host
// whose default runtime is NVIDIA's), a non-root numeric user, a health
// check, FFmpeg's shared libraries without its headers and .pc files, and
// the minimum driver for NVENC stated. None of these held before.
func TestDockerfileCUDARuntimeStage(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile.cuda")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	final := text[strings.LastIndex(text, "\nFROM "):]
	var code strings.Builder // the instructions, without comments
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			code.WriteString(line + "\n")
		}
	}
	if strings.Contains(code.String(), "NVIDIA_VISIBLE_DEVICES=all") {
		t.Error("NVIDIA_VISIBLE_DEVICES=all is baked into the image")
	}
	if !strings.Contains(final, "\nUSER 10001") {
		t.Error("the final stage does not switch to a non-root numeric user")
	}
	if !strings.Contains(final, "\nHEALTHCHECK ") {
		t.Error("no HEALTHCHECK")
	}
	if strings.Contains(text, "cp -a build/ffmpeg /opt") || strings.Contains(text, "/include") && strings.Contains(final, "COPY --from=build /src/build/ffmpeg") {
		t.Error("FFmpeg's whole prefix (headers, pkgconfig) is copied into the image")
	}
	if !strings.Contains(text, "530.41.03") {
		t.Error("the minimum NVIDIA driver for NVENC (530.41.03 for NVENC API 12.1) is not stated")
	}
}
