package wal

import (
	"cmp"
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
// at its last good record and deleting the empty ones, keeps one applied
// segment's file for recycling (deleting any other), and sets nextID past
// them all.
//
// After a crash the active segment's records are followed by the zeros
// its last pass wrote after them (or, in a segment prepared with zeros,
// by zeros to its end), then by whatever the file held: zeros, or records
// of the file's earlier life, which never check under this life's seed.
// Both are a clean end, dropped silently. Non-zero bytes right after the
// last good record (a record whose length or checksum is wrong) are a
// write torn by the crash, or damage: dropped with a warning. Either way
// nothing after the first bad record is replayed: every pass writes after
// the synced end of its segment and is acknowledged only once synced, so
// a valid-looking record beyond it was never acknowledged.
func (l *Log) recover() error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("wal: open: %w", err)
	}
	var segs []*segment
	l.nextID = 1
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name, suffix, ok := strings.Cut(e.Name(), ".")
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(name, 16, 64)
		if err != nil || len(name) != 16 {
			continue
		}
		switch "." + suffix {
		case segSuffix:
			segs = append(segs, &segment{id: id})
		case v1Suffix:
			segs = append(segs, &segment{id: id, v1: true})
		case freeSuffix:
			path := filepath.Join(l.dir, e.Name())
			if l.free == "" {
				l.free = path
			} else if err := os.Remove(path); err != nil {
				return fmt.Errorf("wal: remove recycled segment: %w", err)
			}
		default:
			continue
		}
		l.nextID = max(l.nextID, id+1)
	}
	slices.SortFunc(segs, func(a, b *segment) int { return cmp.Compare(a.id, b.id) })
	for _, s := range segs {
		path := filepath.Join(l.dir, s.name())
		good, oldest, total, clean, err := scanSegment(path, l.opts.MaxRecordBytes, s.seed(), s.v1)
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
		s.size, s.sealed, s.oldest = good, true, oldest
		l.segs = append(l.segs, s)
		l.bytes += good
	}
	return syncDir(l.dir)
}

// scanSegment returns the length of the valid prefix of a segment whose
// records are seeded with seed, the append time of its first record, its
// total size and whether what follows the valid prefix is a clean end:
// zeros right after it (v1, which is never recycled: zeros to the end).
func scanSegment(path string, maxRecord int64, seed uint32, v1 bool) (good, oldest, total int64, clean bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, 0, false, fmt.Errorf("wal: read segment: %w", err)
	}
	total = int64(len(b))
	for {
		body, n := parseRecord(b[good:], maxRecord, seed)
		if n == 0 {
			rest := b[good:]
			if !v1 {
				rest = rest[:min(len(rest), endBytes)]
			}
			return good, oldest, total, allZero(rest), nil
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
// record's length, or n = 0 when b does not start with a whole record
// valid under seed. A zero-filled tail never parses: a body holds at least its
// append time, so its length is never 0.
func parseRecord(b []byte, maxRecord int64, seed uint32) (body []byte, n int) {
	if len(b) < headerBytes {
		return nil, 0
	}
	size := int64(binary.LittleEndian.Uint32(b))
	if size < timeBytes || size > maxRecord+timeBytes || size > int64(len(b)-headerBytes) {
		return nil, 0
	}
	body = b[headerBytes : headerBytes+size]
	if crc32.Checksum(body, castagnoli)^seed != binary.LittleEndian.Uint32(b[4:]) {
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
