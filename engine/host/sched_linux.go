package host

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// setPolicy puts every thread of the process under the Linux scheduling
// policy policy (SCHED_BATCH or SCHED_OTHER), keeping each thread's nice
// value; a thread under a real-time policy or SCHED_IDLE keeps its own. A thread inherits its creator's policy, so once every existing
// thread has it, so does every later one; it repeats the pass until one
// finds no thread to change (the Go runtime may start threads meanwhile).
func setPolicy(policy uint32) error {
	for range 16 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		changed := 0
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			attr, err := unix.SchedGetAttr(tid, 0)
			if errors.Is(err, unix.ESRCH) {
				continue // the thread has exited
			}
			if err != nil {
				return fmt.Errorf("thread %d: %w", tid, err)
			}
			if attr.Policy == policy || (attr.Policy != policyBatch && attr.Policy != policyNormal) {
				continue // done, or a real-time or idle thread, which keeps its own
			}
			set := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: policy, Nice: attr.Nice}
			if err := unix.SchedSetAttr(tid, &set, 0); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("thread %d: %w", tid, err)
			}
			changed++
		}
		if changed == 0 {
			return nil
		}
	}
	return errors.New("threads kept appearing")
}

// batchSupported: Linux has SCHED_BATCH.
const batchSupported = true

const (
	policyBatch  = unix.SCHED_BATCH
	policyNormal = unix.SCHED_NORMAL
)
