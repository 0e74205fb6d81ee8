package sqlcommon

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/tailscope/tailscope/store"
)

// KeepTraces stores copies of an incident's cited traces. The spans are
// JSON (store.Span's own encoding: ids as hex text, attributes as their
// stored JSON), read back by KeptTrace only. Text fields were cleaned when
// the spans were written, so the copy holds nothing the store refuses.
func (r Records) KeepTraces(ctx context.Context, incidentID int64, traces map[store.TraceID][]store.Span) error {
	if _, err := r.IncidentByID(ctx, incidentID); err != nil {
		return err
	}
	ids := make([]store.TraceID, 0, len(traces))
	for id := range traces {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b store.TraceID) int { return slices.Compare(a[:], b[:]) })
	now := NS(r.Now())
	for _, id := range ids {
		spans := traces[id]
		if len(spans) == 0 {
			continue
		}
		body, err := json.Marshal(spans)
		if err != nil {
			return fmt.Errorf("keep trace %s: encode: %w", id, err)
		}
		if _, err := r.Conn.Exec(ctx, Rebind(r.Conn.Dialect(), `INSERT INTO kept_traces (incident_id, trace_id, kept_ns, span_count, spans)
VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`), incidentID, id[:], now, len(spans), string(body)); err != nil {
			return r.errorf(fmt.Sprintf("keep trace %s for incident %d", id, incidentID), err)
		}
	}
	return nil
}

// KeptTrace returns the first kept copy of a trace or store.ErrNotFound.
func (r Records) KeptTrace(ctx context.Context, id store.TraceID) (store.KeptTrace, error) {
	k, err := one(ctx, r.Conn, `SELECT incident_id, kept_ns, spans FROM kept_traces WHERE trace_id = ?
ORDER BY kept_ns, incident_id LIMIT 1`, func(sc Scanner) (store.KeptTrace, error) {
		var (
			k    store.KeptTrace
			kept int64
			body string
		)
		if err := sc.Scan(&k.IncidentID, &kept, &body); err != nil {
			return k, err
		}
		k.KeptAt = Time(kept)
		if err := json.Unmarshal([]byte(body), &k.Spans); err != nil {
			return k, fmt.Errorf("decode kept trace: %w", err)
		}
		return k, nil
	}, id[:])
	if err != nil {
		return k, r.errorf(fmt.Sprintf("kept trace %s", id), err)
	}
	k.TraceID = id
	return k, nil
}
