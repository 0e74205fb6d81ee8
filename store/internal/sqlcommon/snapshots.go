package sqlcommon

import (
	"context"
	"errors"
	"fmt"

	"github.com/tailscope/tailscope/store"
)

// snapshotTries bounds how often CreateSnapshot retries after another
// process took the revision it computed.
const snapshotTries = 5

// CreateSnapshot stores s as its incident's next revision. The revision
// is computed in the INSERT itself; two processes finalizing the same
// incident at once collide on the primary key, and the loser tries again
// with the next number. The body is text in both backends (not jsonb,
// which would reorder it): exports must render from the bytes stored.
func (r Records) CreateSnapshot(ctx context.Context, s store.IncidentSnapshot) (store.IncidentSnapshot, error) {
	now := NS(r.Now())
	var err error
	for range snapshotTries {
		err = r.write(ctx, `INSERT INTO incident_snapshots (incident_id, revision, created_ns, version, body)
SELECT id, (SELECT COALESCE(MAX(revision), 0) + 1 FROM incident_snapshots WHERE incident_id = ?), ?, ?, ?
FROM incidents WHERE id = ? RETURNING revision`,
			s.IncidentID, now, Clean(s.Version), string(s.Body), s.IncidentID).Scan(&s.Revision)
		if err == nil || errors.Is(err, store.ErrNotFound) || ctx.Err() != nil {
			break
		}
		if _, lerr := r.latestRevision(ctx, s.IncidentID); lerr != nil {
			break // not a collision: the store itself failed
		}
	}
	if err != nil {
		return s, r.errorf(fmt.Sprintf("create snapshot of incident %d", s.IncidentID), err)
	}
	s.CreatedAt, s.Version = Time(now), Clean(s.Version)
	return s, nil
}

func (r Records) latestRevision(ctx context.Context, incidentID int64) (int, error) {
	var rev int
	err := r.write(ctx, `SELECT COALESCE(MAX(revision), 0) FROM incident_snapshots WHERE incident_id = ?`, incidentID).Scan(&rev)
	return rev, err
}

const snapshotColumns = "incident_id, revision, created_ns, version"

func scanSnapshot(sc Scanner) (store.IncidentSnapshot, error) {
	var s store.IncidentSnapshot
	var created int64
	err := sc.Scan(&s.IncidentID, &s.Revision, &created, &s.Version)
	s.CreatedAt = Time(created)
	return s, err
}

func scanSnapshotBody(sc Scanner) (store.IncidentSnapshot, error) {
	var s store.IncidentSnapshot
	var created int64
	var body string
	err := sc.Scan(&s.IncidentID, &s.Revision, &created, &s.Version, &body)
	s.CreatedAt, s.Body = Time(created), []byte(body)
	return s, err
}

// Snapshot returns one revision (0: the latest) or store.ErrNotFound.
func (r Records) Snapshot(ctx context.Context, incidentID int64, revision int) (store.IncidentSnapshot, error) {
	q, args := `SELECT `+snapshotColumns+`, body FROM incident_snapshots WHERE incident_id = ? AND revision = ?`, []any{incidentID, revision}
	if revision == 0 {
		q, args = `SELECT `+snapshotColumns+`, body FROM incident_snapshots WHERE incident_id = ?
ORDER BY revision DESC LIMIT 1`, []any{incidentID}
	}
	s, err := one(ctx, r.Conn, q, scanSnapshotBody, args...)
	if err != nil {
		return s, r.errorf(fmt.Sprintf("incident %d snapshot %d", incidentID, revision), err)
	}
	return s, nil
}

// Snapshots lists an incident's revisions newest first, without bodies.
func (r Records) Snapshots(ctx context.Context, incidentID int64) ([]store.IncidentSnapshot, error) {
	out, err := Collect(ctx, r.Conn, `SELECT `+snapshotColumns+` FROM incident_snapshots WHERE incident_id = ?
ORDER BY revision DESC`, scanSnapshot, incidentID)
	if err != nil {
		return nil, r.errorf(fmt.Sprintf("incident %d snapshots", incidentID), err)
	}
	return out, nil
}
