package demodata

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// Played is what a scenario run reports: the window it covered and the
// load generator's counts. internal/feedplay writes it as JSON.
type Played struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Sent    int64     `json:"sent"`
	OK      int64     `json:"ok"`
	Failed  int64     `json:"failed"`
	Dropped int64     `json:"dropped"`
	// Summary is the load generator's report, for test logs.
	Summary string `json:"summary"`
}

// PlayedOf summarises a Fill result.
func PlayedOf(res Result) Played {
	p := Played{From: res.From, To: res.To}
	if l := res.Load; l != nil {
		p.Sent, p.OK, p.Failed, p.Dropped, p.Summary = l.Sent, l.OK, l.Failed, l.Dropped, l.Summary()
	}
	return p
}

// PlayProcess runs cfg in a child process: binary is internal/feedplay,
// built without the race detector (internal/gobuild), so feedsvc's CPU
// work costs what it costs in production even when the tests run under
// -race. It returns when every span has been exported.
func PlayProcess(ctx context.Context, binary string, cfg Config) (Played, error) {
	in, err := json.Marshal(cfg)
	if err != nil {
		return Played{}, fmt.Errorf("demodata: %w", err)
	}
	cmd := exec.CommandContext(ctx, binary)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // lets it flush
	cmd.WaitDelay = 30 * time.Second
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Played{}, fmt.Errorf("demodata: feedplay %s: %w\n%s", cfg.Scenario.Name, err, stderr.String())
	}
	var p Played
	if err := json.Unmarshal(stdout.Bytes(), &p); err != nil {
		return Played{}, fmt.Errorf("demodata: feedplay %s: read result %q: %w", cfg.Scenario.Name, stdout.String(), err)
	}
	return p, nil
}
