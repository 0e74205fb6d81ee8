// Package acceptance holds tailscope's ground-truth tests. feedsvc plays a
// named scenario (package feedsvc/scenario) against a running tailscope,
// and what the JSON API then answers — outlier groups, dimension tables,
// deploy markers, comparisons — must name what the scenario injected, as
// its machine-readable Causes state it. A scenario edit therefore changes
// what is expected; nothing here copies the expectations.
//
// Scenarios run in real time (their latency is real sleeps and real CPU),
// compressed: the steps keep their place relative to the run, which is
// shorter than the scenario's and faster, sized so that each statistical
// claim rests on enough requests. feedsvc runs in a process of its own
// (internal/feedplay), built without the race detector, so that `go test
// -race` does not turn the demo's CPU work into the dominant cause of its
// tail. tailscope runs in the test process, started through package app
// on free ports with a fresh PostgreSQL database as its store (SQLite on a
// machine without PostgreSQL configured).
//
// Scenarios run in the simulated mode, except one: where PostgreSQL and
// Redis are configured (always in CI, where internal/testenv requires
// them) the regression scenario runs in the real mode, so its cause is a
// real SQL query, and the same run's traces serve the cross-service
// trace-shape test. The tests run one after another, for minutes; they are
// skipped with -short.
//
// The package has no code outside its tests and the feedplay command.
package acceptance
