package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tailscope/tailscope/migrations"
	"github.com/tailscope/tailscope/store"
)

// ErrReadOnly is returned by the writes of a DB opened with OpenReplica.
var ErrReadOnly = errors.New("postgres: read replica: writes go to the primary")

// ErrReplicaBehind means a replica's schema is older than this build's:
// it has not yet replayed the primary's migrations, or it replicates
// another database. It wraps store.ErrUnavailable, since replay catches
// up with the first.
var ErrReplicaBehind = fmt.Errorf("postgres: replica schema is behind this build's: %w", store.ErrUnavailable)

// OpenReplica connects to a read-only copy of a tailscope database — a
// PostgreSQL streaming replica of the primary Open writes to — to serve
// span reads (trace, search, samples, endpoints, operations) away from the
// primary's writes. It migrates nothing, creates no partitions and no
// session staging table (a hot standby refuses DDL, even temporary), and
// starts no background work; it checks that the replica has replayed this
// build's schema. The returned DB refuses writes with ErrReadOnly.
func OpenReplica(ctx context.Context, url string, opts ...Option) (*DB, error) {
	cfg := config{log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse read url: %w: %w", store.ErrInvalid, err)
	}
	if cfg.maxConns > 0 {
		pcfg.MaxConns = cfg.maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, mapErr(ctx, "connect replica", err)
	}
	db := &DB{pool: pool, log: cfg.log, now: time.Now, parts: newPartitions(), readOnly: true, stop: make(chan struct{})}
	db.Records = db.records()
	if err := db.checkSchema(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// checkSchema compares the replica's applied migrations with this build's.
func (db *DB) checkSchema(ctx context.Context) error {
	want, err := latestMigration()
	if err != nil {
		return err
	}
	var have int64
	err = db.pool.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&have)
	if err != nil {
		if strings.Contains(err.Error(), "goose_db_version") {
			return fmt.Errorf("%w: it holds no tailscope schema (is it a replica of the primary?)", ErrReplicaBehind)
		}
		return mapErr(ctx, "replica schema", err)
	}
	if have < want {
		return fmt.Errorf("%w: migration %d, want %d", ErrReplicaBehind, have, want)
	}
	return nil
}

// latestMigration is the highest migration version this build embeds.
func latestMigration() (int64, error) {
	entries, err := fs.ReadDir(migrations.Postgres, ".")
	if err != nil {
		return 0, fmt.Errorf("postgres: migrations: %w", err)
	}
	var latest int64
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			continue
		}
		if v, err := strconv.ParseInt(num, 10, 64); err == nil && v > latest {
			latest = v
		}
	}
	return latest, nil
}

// Replication is how far a database's data trails its primary.
type Replication struct {
	// Replica is false for a primary (or a promoted replica): its data is
	// current and Lag is zero.
	Replica bool
	// Lag is how long ago the last replayed transaction committed on the
	// primary, zero when the replica has replayed all it received.
	Lag time.Duration
	// Streaming is whether the replica is receiving from the primary now;
	// a replica cut off from its primary shows zero lag and old data.
	Streaming bool
}

// Replication reports how far this database trails its primary.
func (db *DB) Replication(ctx context.Context) (Replication, error) {
	var (
		r       Replication
		lagSecs float64
	)
	// pg_stat_wal_receiver has a row only while the receiver runs; its
	// columns other than pid are hidden from roles without
	// pg_read_all_stats, and the row's existence is what is asked here.
	err := db.pool.QueryRow(ctx, `SELECT pg_is_in_recovery(),
  CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
       ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END,
  EXISTS (SELECT 1 FROM pg_stat_wal_receiver)`).Scan(&r.Replica, &lagSecs, &r.Streaming)
	if err != nil {
		return Replication{}, mapErr(ctx, "replication status", err)
	}
	if !r.Replica {
		r.Streaming = true
	}
	r.Lag = time.Duration(max(lagSecs, 0) * float64(time.Second))
	return r, nil
}
