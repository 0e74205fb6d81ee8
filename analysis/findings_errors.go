package analysis

import (
	"fmt"
	"strings"

	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

// Error finding kinds: a failed span where the failure started. They rank
// before every pattern finding (see severe), because a request that failed
// or timed out matters more than one that could have been faster.
const (
	FindingError   = "error"
	FindingTimeout = "timeout"
)

// severe says a finding is a failure rather than a missed optimisation.
func severe(kind string) bool { return kind == FindingError || kind == FindingTimeout }

// errorFindings reports each error span none of whose children failed: the
// origin of an error that its ancestors only passed on. A span whose status
// message, exception or attributes speak of a timeout or an exceeded
// deadline is a timeout, reported even when the request recovered (the
// wait was spent anyway); other errors only when the request itself failed
// (its root is an error), since a failure the caller handled is not why
// the request went wrong. Time at stake is the failed span's duration: the
// time spent on work that did not succeed.
func errorFindings(tree *Tree) []Finding {
	var out []Finding
	failed := tree.Span(tree.Root()).StatusCode == store.StatusError
	for n := range int32(tree.Len()) {
		sp := tree.Span(n)
		if sp.StatusCode != store.StatusError || childFailed(tree, n) {
			continue
		}
		kind, what := FindingError, "Error"
		if timedOut(sp) {
			kind, what = FindingTimeout, "Timeout"
		} else if !failed {
			continue
		}
		msg := sp.StatusMessage
		if msg == "" {
			msg = "status error"
		}
		out = append(out, Finding{
			Kind:    kind,
			Title:   fmt.Sprintf("%s: %s after %s", what, sp.Name, units.Ms(nsToMs(sp.DurationNano))),
			Service: sp.Service, SpanIDs: []store.SpanID{sp.SpanID},
			TimeMs: round3(nsToMs(sp.DurationNano)),
			Detail: fmt.Sprintf("%s failed (%s) after %s; the spans above it only passed the failure on.",
				spanRef(sp), msg, units.Ms(nsToMs(sp.DurationNano))),
		})
	}
	return out
}

func childFailed(tree *Tree, n int32) bool {
	for _, c := range tree.Children(n) {
		if tree.Span(c).StatusCode == store.StatusError {
			return true
		}
	}
	return false
}

// timeoutWords are how clients, gRPC and databases name a timeout.
var timeoutWords = []string{"timeout", "timed out", "deadline exceeded", "deadline_exceeded", "canceling statement due to statement timeout"}

func timedOut(sp *store.Span) bool {
	text := strings.ToLower(sp.StatusMessage + " " + string(sp.Attributes))
	for _, e := range sp.Events {
		text += " " + strings.ToLower(e.Name+" "+string(e.Attributes))
	}
	for _, w := range timeoutWords {
		if strings.Contains(text, w) {
			return true
		}
	}
	return false
}
