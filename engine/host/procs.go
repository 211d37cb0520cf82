package host

import (
	"os"
	"runtime"
)

// ProcsPerCore is how many Ps (GOMAXPROCS) per core UseEncoderProcs gives
// the Go scheduler.
//
// Every session's pipeline encodes with libx264 in a cgo call (about
// 1.3 ms per 640×360 frame, 3.7 ms per 1280×720 one), and a goroutine in
// a cgo call keeps its P until the runtime's monitor takes it back. With
// one P per core, a node of many sessions often has every P inside an
// encode: the pacers' timers, the other pipelines and pion's goroutines
// wait for one to come out, frames reach their slot a frame late, and the
// pacer skips them. bench/BenchmarkCapacity on the 2-core development VM,
// 640×360: 28 sessions skipped 169–177 frames in 8 s with GOMAXPROCS 2,
// 2 with 4; 32 sessions skipped 681 with 3, 84 with 4 and 3 with 8 (no
// gain past 8). With more Ps than cores the kernel shares the cores among
// the encoding threads instead, and nothing waits behind an encode.
const ProcsPerCore = 4

// UseEncoderProcs sets GOMAXPROCS to ProcsPerCore × runtime.NumCPU(),
// unless the GOMAXPROCS environment variable chose a value or the current
// one is larger already, and returns the value in force. Run calls it;
// a program that serves sessions through the engine's other entry points
// should call it once at start. It is safe for concurrent use.
func UseEncoderProcs() int {
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	n := ProcsPerCore * runtime.NumCPU()
	if runtime.GOMAXPROCS(0) < n {
		runtime.GOMAXPROCS(n)
	}
	return runtime.GOMAXPROCS(0)
}
