//go:build race

package main

// raceEnabled: the tests run under the race detector (make race), which
// slows the face detector and the browser's peer many times over: browser
// tests and frame-rate checks are left to the runs without it (make test-go).
const raceEnabled = true
