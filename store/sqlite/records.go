package sqlite

import (
	"github.com/tailscope/tailscope/store/internal/sqlcommon"
)

// records builds DB.Records over this store's connections.
func (db *DB) records() sqlcommon.Records {
	return sqlcommon.Records{Conn: conn{db}, Name: "sqlite", Now: db.now}
}
