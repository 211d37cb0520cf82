//go:build !race

package protocol

// raceDetector: the tests run under -race (real-time checks cannot hold).
const raceDetector = false
