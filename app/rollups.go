package app

import (
	"context"
	"time"
)

// rollupCompactEvery is how often appended rollup rows are folded. Writers
// append one row per endpoint and bucket per commit (hundreds a minute at
// a few commits a second); readers merge them either way, and folding
// them every 30 s keeps a page's read to about one row per bucket.
const rollupCompactEvery = 30 * time.Second

// rollupLoop compacts rollups and, every hour, removes hour rollups past
// Config.RollupRetention (0 keeps them). Minute rollups go with the spans
// (Config.Retention).
func (a *App) rollupLoop(ctx context.Context) {
	t := time.NewTicker(rollupCompactEvery)
	defer t.Stop()
	var lastRetention time.Time
	for {
		if err := a.store.CompactRollups(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("rollups: compact", "err", err)
		}
		if a.cfg.RollupRetention > 0 && time.Since(lastRetention) >= time.Hour {
			cutoff := time.Now().Add(-a.cfg.RollupRetention)
			if err := a.store.DeleteRollupsBefore(ctx, cutoff); err != nil && ctx.Err() == nil {
				a.log.Warn("retention: rollups", "cutoff", cutoff, "err", err)
			}
			lastRetention = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
