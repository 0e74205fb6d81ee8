package sqlcommon

import "testing"

func TestRebind(t *testing.T) {
	q := `UPDATE t SET a = ?, b = ? WHERE id = ? AND s = 'auto'`
	if got, want := Rebind(Postgres, q), `UPDATE t SET a = $1, b = $2 WHERE id = $3 AND s = 'auto'`; got != want {
		t.Errorf("postgres: %s, want %s", got, want)
	}
	if got := Rebind(SQLite, q); got != q {
		t.Errorf("sqlite: %s, want it unchanged", got)
	}
}
