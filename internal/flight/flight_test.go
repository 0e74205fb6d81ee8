package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestCoalesces(t *testing.T) {
	var g Group[int]
	var runs atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]int, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := g.Do(context.Background(), "k", func(ctx context.Context) (int, error) {
				if runs.Add(1) == 1 {
					close(started)
				}
				<-release
				return 42, nil
			})
			if err != nil {
				t.Error(err)
			}
			results[i] = v
		}()
		if i == 0 {
			<-started // the others join a running flight
		}
	}
	// Every caller is waiting once the count shows them all.
	for {
		g.mu.Lock()
		n := 0
		if c := g.calls["k"]; c != nil {
			n = c.waiters
		}
		g.mu.Unlock()
		if n == len(results) {
			break
		}
	}
	close(release)
	wg.Wait()
	if runs.Load() != 1 {
		t.Errorf("fn ran %d times, want once", runs.Load())
	}
	for i, v := range results {
		if v != 42 {
			t.Errorf("caller %d got %d", i, v)
		}
	}
}

// TestCancelledWhenLastCallerLeaves: one caller leaving does not stop the
// work another waits for; the last one leaving does.
func TestCancelledWhenLastCallerLeaves(t *testing.T) {
	var g Group[int]
	started := make(chan struct{})
	stopped := make(chan error, 1)
	fn := func(ctx context.Context) (int, error) {
		close(started)
		<-ctx.Done()
		stopped <- ctx.Err()
		return 0, ctx.Err()
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { _, err := g.Do(ctx1, "k", fn); errs <- err }()
	<-started
	joined := make(chan struct{})
	go func() {
		close(joined)
		_, err := g.Do(ctx2, "k", fn)
		errs <- err
	}()
	<-joined
	for { // wait until the second caller is counted
		g.mu.Lock()
		n := g.calls["k"].waiters
		g.mu.Unlock()
		if n == 2 {
			break
		}
	}
	cancel1()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v", err)
	}
	select {
	case <-stopped:
		t.Fatal("the work stopped while a caller still waited")
	default:
	}
	cancel2()
	<-errs
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Fatalf("work ended with %v, want cancelled", err)
	}
}
