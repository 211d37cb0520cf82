package host

import (
	"fmt"
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

// SchedEnv is the environment variable that keeps UseBatchScheduling from
// changing the process's scheduling policy when it is "normal".
const SchedEnv = "FRAMEWIRE_SCHED"

// BatchScheduling puts every thread of the process under Linux's
// SCHED_BATCH policy (on) or the default SCHED_OTHER (off), keeping their
// nice values; threads under a real-time policy or SCHED_IDLE keep
// theirs. Threads and processes started later inherit it. Elsewhere
// it does nothing. It is safe for concurrent use.
//
// Under SCHED_BATCH a thread that wakes does not preempt the one running:
// it waits for the running thread to block or for the next scheduler
// tick. A node's threads are mostly encoding, and most wake-ups are short
// (a pacer's timer, a socket read, the Go runtime handing a P on while a
// cgo encode holds its own), so under the default policy every encode is
// cut into pieces and refills its caches after each:
// bench/BenchmarkCapacity's 13 sessions at 1280×720 on the 2-core
// development VM are preempted 6,500 times a second, 17 times per
// encoded frame. SCHED_BATCH halves that (the receivers, another
// process, still preempt), the CPU per frame falls from 4.72–4.75 to
// 4.51–4.60 ms (fixed 13 sessions), and the node holds 14 sessions
// instead of 13. Latency does not suffer: bench/BenchmarkLatency's one
// 720p session (emit → sent to an in-process receiver) measured p50
// 5.7–6.0 against 6.4–6.7 ms and p95 6.7–6.9 against 7.6–9.2 ms, three
// runs each, interleaved.
func BatchScheduling(on bool) error {
	if on {
		return setPolicy(policyBatch)
	}
	return setPolicy(policyNormal)
}

// UseBatchScheduling calls BatchScheduling(true) unless SchedEnv is
// "normal", and returns the policy in force: "batch" or "normal". Run
// calls it (so the framewire command and the Python package's serve do);
// a program that serves sessions through the engine's other entry points
// may call it once at start, which also changes the scheduling of its own
// threads (a Python model's included). It is safe for concurrent use.
func UseBatchScheduling() (string, error) {
	if os.Getenv(SchedEnv) == "normal" || !batchSupported {
		return "normal", nil
	}
	if err := BatchScheduling(true); err != nil {
		return "normal", fmt.Errorf("batch scheduling: %w", err)
	}
	return "batch", nil
}
