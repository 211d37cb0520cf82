//go:build !linux

package encode

import "time"

// threadCPU is 0 off Linux: StageCPU then adds nothing.
func threadCPU() time.Duration { return 0 }
