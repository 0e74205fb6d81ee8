//go:build !unix

package wal

import "time"

// processCPU is not read on this system: benchmarks report no CPU.
func processCPU() time.Duration { return 0 }
