package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// recover scans the segments left by a previous process, truncating each
// at its last good record and deleting the empty ones, and sets nextID
// past them.
//
// A segment is prepared (pre-sized with zeros) before it is used, so after
// a crash the records of the active segment — and of a spare being
// prepared, none — are followed by zeros up to its prepared size: that
// tail was never written and is dropped silently. Anything else after the
// last good record (a record whose length or checksum is wrong, or
// non-zero bytes after a gap of zeros) is a write torn by the crash or
// damage: it is dropped with a warning. Either way nothing after the first
// bad record is replayed: every pass writes after the synced end of its
// segment and is acknowledged only once synced, so a valid-looking record
// beyond a gap was never acknowledged (its pass's sync did not return).
func (l *Log) recover() error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("wal: open: %w", err)
	}
	var ids []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok || e.IsDir() {
			continue
		}
		id, err := strconv.ParseUint(name, 16, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	l.nextID = 1
	for _, id := range ids {
		l.nextID = id + 1
		path := filepath.Join(l.dir, segName(id))
		good, oldest, total, clean, err := scanSegment(path, l.opts.MaxRecordBytes)
		if err != nil {
			return err
		}
		if good < total {
			if !clean {
				l.log.Warn("wal: segment ends in a torn or corrupt record; truncated at the last good record",
					"segment", path, "kept_bytes", good, "dropped_bytes", total-good)
			}
			if good > 0 {
				if err := truncateSync(path, good); err != nil {
					return err
				}
			}
		}
		if good == 0 {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("wal: remove empty segment: %w", err)
			}
			continue
		}
		l.segs = append(l.segs, &segment{id: id, size: good, sealed: true, oldest: oldest})
		l.bytes += good
	}
	return syncDir(l.dir)
}

// scanSegment returns the length of the valid prefix of a segment, the
// append time of its first record, its total size and whether the bytes
// after the valid prefix are all zero (never written).
func scanSegment(path string, maxRecord int64) (good, oldest, total int64, clean bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, 0, false, fmt.Errorf("wal: read segment: %w", err)
	}
	total = int64(len(b))
	for {
		body, n := parseRecord(b[good:], maxRecord)
		if n == 0 {
			return good, oldest, total, allZero(b[good:]), nil
		}
		if good == 0 {
			oldest = int64(binary.LittleEndian.Uint64(body))
		}
		good += int64(n)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// parseRecord returns the body of the record at the start of b and the
// record's length, or n = 0 when b does not start with a whole, valid
// record. A zero-filled tail never parses: a body holds at least its
// append time, so its length is never 0.
func parseRecord(b []byte, maxRecord int64) (body []byte, n int) {
	if len(b) < headerBytes {
		return nil, 0
	}
	size := int64(binary.LittleEndian.Uint32(b))
	if size < timeBytes || size > maxRecord+timeBytes || size > int64(len(b)-headerBytes) {
		return nil, 0
	}
	body = b[headerBytes : headerBytes+size]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0
	}
	return body, headerBytes + int(size)
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: truncate segment: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("wal: truncate segment: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wal: truncate segment: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wal: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("wal: sync directory: %w", err)
	}
	return nil
}
