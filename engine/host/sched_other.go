//go:build !linux

package host

// setPolicy does nothing where there is no SCHED_BATCH.
func setPolicy(uint32) error { return nil }

// batchSupported: there is no SCHED_BATCH here.
const batchSupported = false

const (
	policyBatch  = 3
	policyNormal = 0
)
