package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tailscope/tailscope/store"
)

// testIncidentSnapshots: revisions count from 1 per incident, bodies come
// back byte for byte, retention keeps them, concurrent finalizes get
// distinct revisions, and deleting the incident removes them.
func testIncidentSnapshots(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	in, err := s.CreateIncident(ctx, store.Incident{Title: "snap", From: base, To: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.CreateIncident(ctx, store.Incident{Title: "other", From: base, To: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if list, err := s.Snapshots(ctx, in.ID); err != nil || list == nil || len(list) != 0 {
		t.Errorf("Snapshots(none) = %v, %v; want an empty list", list, err)
	}
	_, err = s.Snapshot(ctx, in.ID, 0)
	wantErrIs(t, "Snapshot(none)", err, store.ErrNotFound)
	_, err = s.CreateSnapshot(ctx, store.IncidentSnapshot{IncidentID: 1 << 40, Version: "v", Body: []byte(`{}`)})
	wantErrIs(t, "CreateSnapshot(no incident)", err, store.ErrNotFound)

	// Key order and spacing are not JSON's business but are the export's:
	// the body must not be normalised.
	bodies := [][]byte{[]byte("{\"z\": 1,  \"a\": \"é ✓\"}\n"), []byte(`{"b":2,"a":1}`)}
	var made []store.IncidentSnapshot
	for i, b := range bodies {
		sn, err := s.CreateSnapshot(ctx, store.IncidentSnapshot{IncidentID: in.ID, Version: fmt.Sprintf("v%d", i), Body: b})
		if err != nil {
			t.Fatalf("CreateSnapshot %d: %v", i, err)
		}
		if sn.Revision != i+1 || sn.CreatedAt.IsZero() {
			t.Errorf("CreateSnapshot %d = revision %d at %v, want revision %d", i, sn.Revision, sn.CreatedAt, i+1)
		}
		made = append(made, sn)
	}
	if sn, err := s.CreateSnapshot(ctx, store.IncidentSnapshot{IncidentID: other.ID, Version: "v", Body: []byte(`{}`)}); err != nil || sn.Revision != 1 {
		t.Errorf("first snapshot of another incident = revision %d, %v; want 1", sn.Revision, err)
	}
	if err := s.DeleteBefore(ctx, time.Now().Add(24*time.Hour)); err != nil {
		t.Fatalf("DeleteBefore: %v", err)
	}
	for rev, want := range map[int]int{0: 2, 1: 1, 2: 2} {
		got, err := s.Snapshot(ctx, in.ID, rev)
		if err != nil {
			t.Fatalf("Snapshot(%d) after retention: %v", rev, err)
		}
		w := made[want-1]
		if got.Revision != want || !bytes.Equal(got.Body, bodies[want-1]) || got.Version != w.Version || !got.CreatedAt.Equal(w.CreatedAt) {
			t.Errorf("Snapshot(%d) = revision %d %q %q, want revision %d %q", rev, got.Revision, got.Version, got.Body, want, bodies[want-1])
		}
	}
	_, err = s.Snapshot(ctx, in.ID, 3)
	wantErrIs(t, "Snapshot(3)", err, store.ErrNotFound)

	var wg sync.WaitGroup
	revs := make([]int, 4)
	for i := range revs {
		wg.Go(func() {
			sn, err := s.CreateSnapshot(ctx, store.IncidentSnapshot{IncidentID: in.ID, Version: "c", Body: []byte(`{}`)})
			if err != nil {
				t.Errorf("concurrent CreateSnapshot: %v", err)
			}
			revs[i] = sn.Revision
		})
	}
	wg.Wait()
	list, err := s.Snapshots(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, sn := range list {
		got = append(got, sn.Revision)
		if sn.Body != nil {
			t.Errorf("Snapshots lists bodies")
		}
	}
	if fmt.Sprint(got) != "[6 5 4 3 2 1]" {
		t.Errorf("Snapshots revisions = %v (concurrent ones %v), want 6 down to 1", got, revs)
	}

	if err := s.DeleteIncident(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if list, err := s.Snapshots(ctx, in.ID); err != nil || len(list) != 0 {
		t.Errorf("Snapshots after DeleteIncident = %v, %v; want none", list, err)
	}
	if _, err := s.Snapshot(ctx, other.ID, 0); err != nil {
		t.Errorf("another incident's snapshot after DeleteIncident: %v", err)
	}
}
