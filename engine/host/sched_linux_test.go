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
// started later inherit it, and it puts them all back; FRAMEWIRE_SCHED=
// normal keeps UseBatchScheduling from changing anything.
func TestBatchScheduling(t *testing.T) {
	defer func() { _ = BatchScheduling(false) }()
	t.Setenv(SchedEnv, "normal")
	if p, err := UseBatchScheduling(); p != "normal" || err != nil {
		t.Fatalf("%s=normal: UseBatchScheduling = %q, %v; want normal, nil", SchedEnv, p, err)
	}
	if n := policies(t); n[unix.SCHED_BATCH] != 0 {
		t.Fatalf("%s=normal: %d threads under SCHED_BATCH; want none", SchedEnv, n[unix.SCHED_BATCH])
	}
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
	if n := policies(t); len(n) != 1 || n[unix.SCHED_BATCH] == 0 {
		t.Errorf("threads by policy %v; want all under SCHED_BATCH (%d)", n, unix.SCHED_BATCH)
	}
	close(release)
	wg.Wait()
	if err := BatchScheduling(false); err != nil {
		t.Fatal(err)
	}
	if n := policies(t); len(n) != 1 || n[unix.SCHED_NORMAL] == 0 {
		t.Errorf("after BatchScheduling(false), threads by policy %v; want all SCHED_NORMAL", n)
	}
}
