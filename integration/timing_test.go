package integration

import "time"

// Bounds for waiting on real processes; not performance assertions.
const (
	zeotestWait = 30 * time.Second
	pollEvery   = 20 * time.Millisecond
)
