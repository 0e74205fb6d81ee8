package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/tailscope/tailscope/internal/units"
)

// ReplicaState is how far a read replica trails its primary.
type ReplicaState struct {
	// Lag is how old the newest replayed data is (zero when the replica
	// has replayed everything it received).
	Lag time.Duration
	// Streaming is whether it receives from the primary now.
	Streaming bool
}

// replicaNoticeLag is the lag past which pages say their data may miss
// the newest spans: below it, a page's own cache TTL and the time a span
// takes from the SDK's batch to the store are of the same order.
const replicaNoticeLag = 10 * time.Second

// replicaNotice is the page footer's warning about the read replica, ""
// when reads are current enough (or go to the primary).
func (s *Server) replicaNotice(ctx context.Context) string {
	if s.replica == nil {
		return ""
	}
	st, err := s.replica(ctx)
	switch {
	case err != nil:
		return "The read replica does not answer its status: the data shown may be old."
	case !st.Streaming:
		return "Reads come from a replica that is not receiving from the primary: the data shown may be old."
	case st.Lag >= replicaNoticeLag:
		return fmt.Sprintf("Reads come from a replica %s behind the primary: the newest spans may be missing.", units.Duration(st.Lag))
	}
	return ""
}

// readyzReplica is the replica's part of the /readyz answer.
type readyzReplica struct {
	LagSeconds float64 `json:"lag_seconds"`
	Streaming  bool    `json:"streaming"`
	Error      string  `json:"error,omitempty"`
}

func (s *Server) readyzReplica(r *http.Request) *readyzReplica {
	if s.replica == nil {
		return nil
	}
	st, err := s.replica(r.Context())
	if err != nil {
		s.log.Warn("readiness: read replica status", "err", err)
		return &readyzReplica{Error: "read replica status unavailable"}
	}
	return &readyzReplica{LagSeconds: st.Lag.Seconds(), Streaming: st.Streaming}
}
