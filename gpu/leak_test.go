package gpu

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// emulatorCase, set by the cuda build's tests, runs one misuse of the
// emulated driver in a child process (see TestEmulatorReportsMisuse).
var emulatorCase func(name string) int

// Every test of the package must leave no goroutine running (a Device's
// owner goroutine included, once closed).
func TestMain(m *testing.M) {
	if c := os.Getenv("FW_CUDAEMU_CASE"); c != "" && emulatorCase != nil {
		os.Exit(emulatorCase(c))
	}
	goleak.VerifyTestMain(m)
}
