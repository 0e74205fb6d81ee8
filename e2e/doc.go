// Package e2e holds tailscope's end-to-end tests and its ingest benchmark.
// They run the whole server — in process through package app, or as the
// real binary built from cmd/tailscope — and talk to it only as clients do:
// OTLP exports (the OpenTelemetry SDK's own exporters and raw OTLP/HTTP
// requests), the JSON API, /readyz and the process itself (SIGKILL, RSS).
//
// The package has no code outside its tests. PostgreSQL comes from
// internal/testenv: tests that need it skip on a laptop without it and fail
// in CI (TAILSCOPE_REQUIRE_SERVICES=1).
package e2e
