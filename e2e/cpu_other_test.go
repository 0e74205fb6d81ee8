//go:build !linux

package e2e

import (
	"testing"
	"time"
)

// processCPU is not measured here: the benchmark omits cpu-us/span.
func processCPU() time.Duration { return -1 }

// postgresCPU is not measured here: the benchmark omits pg-us/span.
func postgresCPU(testing.TB, string) time.Duration { return -1 }
