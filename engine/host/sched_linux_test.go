package host

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// policies counts the process's threads by scheduling policy.
func policies(t *testing.T) map[uint32]int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	n := map[uint32]int{}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		if a, err := unix.SchedGetAttr(tid, 0); err == nil {
			n[a.Policy]++
		}
	}
	return n
}

// Issue 23: BatchScheduling puts every thread under SCHED_BATCH, threads
// started later inherit it, and it puts them all back, leaving a thread
// under another policy (SCHED_IDLE here) alone; FRAMEWIRE_SCHED=normal
// keeps UseBatchScheduling from changing anything.
func TestBatchScheduling(t *testing.T) {
	defer func() { _ = BatchScheduling(false) }()
	t.Setenv(SchedEnv, "normal")
	if p, err := UseBatchScheduling(); p != "normal" || err != nil {
		t.Fatalf("%s=normal: UseBatchScheduling = %q, %v; want normal, nil", SchedEnv, p, err)
	}
	if n := policies(t); n[unix.SCHED_BATCH] != 0 {
		t.Fatalf("%s=normal: %d threads under SCHED_BATCH; want none", SchedEnv, n[unix.SCHED_BATCH])
	}
	// A thread under SCHED_IDLE (as a real-time one) keeps its policy.
	idle := make(chan int)
	idleDone := make(chan struct{})
	var idleWG sync.WaitGroup
	idleWG.Go(func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}, 0); err != nil {
			t.Error(err)
		}
		idle <- unix.Gettid()
		<-idleDone
	})
	idleTid := <-idle
	// The runtime may have started threads from the idle one; they would
	// run the package's later tests at idle priority.
	t.Cleanup(func() {
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			tid, _ := strconv.Atoi(task.Name())
			if a, err := unix.SchedGetAttr(tid, 0); err == nil && a.Policy == unix.SCHED_IDLE {
				_ = unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}, 0)
			}
		}
		if n := policies(t); n[unix.SCHED_IDLE] != 0 {
			t.Errorf("threads left under SCHED_IDLE: %v", n)
		}
	})
	defer idleWG.Wait()
	defer close(idleDone)
	t.Setenv(SchedEnv, "")
	if p, err := UseBatchScheduling(); p != "batch" || err != nil {
		t.Fatalf("UseBatchScheduling = %q, %v; want batch, nil", p, err)
	}
	// New threads: goroutines that lock theirs while others run.
	var wg sync.WaitGroup
	release := make(chan struct{})
	got := make(chan uint32, 8)
	for range 8 {
		wg.Go(func() {
			runtime.LockOSThread()
			a, err := unix.SchedGetAttr(0, 0)
			if err != nil {
				t.Error(err)
			}
			got <- a.Policy
			<-release
		})
	}
	for range 8 {
		if p := <-got; p != unix.SCHED_BATCH {
			t.Errorf("a thread the runtime started afterwards has policy %d; want SCHED_BATCH (%d)", p, unix.SCHED_BATCH)
		}
	}
	// Threads the Go runtime started from the idle one inherit SCHED_IDLE
	// and keep it too.
	if n := policies(t); n[unix.SCHED_NORMAL] != 0 || n[unix.SCHED_BATCH] == 0 || n[unix.SCHED_IDLE] == 0 {
		t.Errorf("threads by policy %v; want all under SCHED_BATCH (%d) but SCHED_IDLE ones (%d)", n, unix.SCHED_BATCH, unix.SCHED_IDLE)
	}
	if a, err := unix.SchedGetAttr(idleTid, 0); err != nil || a.Policy != unix.SCHED_IDLE {
		t.Errorf("the SCHED_IDLE thread: %+v, %v; want its policy kept", a, err)
	}
	close(release)
	wg.Wait()
	if err := BatchScheduling(false); err != nil {
		t.Fatal(err)
	}
	if n := policies(t); n[unix.SCHED_BATCH] != 0 || n[unix.SCHED_NORMAL] == 0 {
		t.Errorf("after BatchScheduling(false), threads by policy %v; want all SCHED_NORMAL but SCHED_IDLE ones", n)
	}
	if a, err := unix.SchedGetAttr(idleTid, 0); err != nil || a.Policy != unix.SCHED_IDLE {
		t.Errorf("after BatchScheduling(false), the SCHED_IDLE thread: %+v, %v; want its policy kept", a, err)
	}
}
