package analysis

import (
	"encoding/json"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/tailscope/tailscope/store"
)

// Dimension names of the outlier report. Attribute dimensions are named
// "attr:" + the attribute key.
const (
	DimDependency = "dependency"
	DimTenant     = "tenant"
	DimPayload    = "payload"
	DimVersion    = "version"
	DimHost       = "host"
	attrDimPrefix = "attr:"
)

// Attribute dimensions are discovered among the entry span's attributes
// and resource when the query names none: keys with between 2 and
// maxAttrValues distinct values among the outliers and the baseline.
const (
	maxAttrValues = 20
	maxAttrDims   = 20
)

// coveredKeys are attribute keys that already have a dimension of their
// own (or are never a useful grouping).
var coveredKeys = map[string]bool{
	"tenant.id": true, "tenant": true, "customer.id": true,
	"service.name": true, "service.version": true, "service.instance.id": true,
	"host.name": true, "host.id": true,
	"http.request.body.size": true, "http.response.body.size": true,
	"rpc.request.body.size": true, "rpc.response.body.size": true,
	"messaging.message.body.size": true,
}

// identifierKey reports keys that hold per-connection or per-entity
// identifiers (ports, ids, addresses, full URLs): in a small sample they
// can look low-cardinality, but grouping by them explains nothing. They
// are only skipped in discovery; a query may still name them.
func identifierKey(k string) bool {
	for _, suf := range []string{".port", ".id", "_id", ".address", ".ip", ".uid", ".uuid"} {
		if strings.HasSuffix(k, suf) {
			return true
		}
	}
	switch k {
	case "url.full", "http.url", "http.target", "url.query", "user_agent.original", "http.user_agent", "thread.id", "thread.name":
		return true
	}
	return false
}

// PayloadBucket names the log2 bucket of a payload size, e.g. "32KiB-64KiB";
// 0 bytes is "none".
func PayloadBucket(b int64) string {
	if b <= 0 {
		return "none"
	}
	k := 63 - bits.LeadingZeros64(uint64(b))
	lo := uint64(1) << k
	if k == 63 {
		return bucketBytes(lo) + "+"
	}
	return bucketBytes(lo) + "-" + bucketBytes(lo<<1)
}

// PayloadBucketRange is the byte range [lo, hi) of a PayloadBucket label
// ("1MiB-2MiB"; hi 0 for the open last bucket); false for "none" or a
// label PayloadBucket does not write.
func PayloadBucketRange(label string) (lo, hi int64, ok bool) {
	a, b, two := strings.Cut(label, "-")
	open := strings.HasSuffix(label, "+")
	if open {
		a = strings.TrimSuffix(label, "+")
	} else if !two {
		return 0, 0, false
	}
	parse := func(s string) (int64, bool) {
		for u, name := range []string{"EiB", "PiB", "TiB", "GiB", "MiB", "KiB", "B"} {
			if n, found := strings.CutSuffix(s, name); found {
				v, err := strconv.ParseUint(n, 10, 64)
				if err != nil || v == 0 {
					return 0, false
				}
				shift := 10 * uint(6-u)
				if v > math.MaxInt64>>shift {
					return 0, false
				}
				return int64(v << shift), true
			}
		}
		return 0, false
	}
	lo, ok = parse(a)
	if !ok {
		return 0, 0, false
	}
	if open {
		return lo, 0, PayloadBucket(lo) == label
	}
	if b == "8EiB" {
		return lo, 0, PayloadBucket(lo) == label // past int64: unbounded
	}
	if hi, ok = parse(b); !ok {
		return 0, 0, false
	}
	return lo, hi, PayloadBucket(lo) == label
}

// bucketBytes writes a power of two with a binary unit and no space
// ("4KiB"): it names a dimension value that API clients and the acceptance
// tests parse, so it is an identifier, not display text (internal/units).
func bucketBytes(b uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	u := 0
	for b >= 1024 && b%1024 == 0 && u < len(units)-1 {
		b /= 1024
		u++
	}
	return strconv.FormatUint(b, 10) + units[u]
}

// dimension interns the values of one dimension.
type dimension struct {
	name  string
	ids   map[string]int32
	names []string
}

func newDimension(name string) *dimension {
	return &dimension{name: name, ids: map[string]int32{}}
}

func (d *dimension) id(v string) int32 {
	if i, ok := d.ids[v]; ok {
		return i
	}
	i := int32(len(d.names))
	d.ids[v] = i
	d.names = append(d.names, v)
	return i
}

// dimVal is one (dimension, value) a request has. Version and host can
// have several values per request (one per service); the others one.
type dimVal struct {
	dim int32
	val int32
}

// Fixed dimension indexes into outlierRun.dims; attribute dimensions
// follow.
const (
	dimTenantIdx = iota
	dimPayloadIdx
	dimVersionIdx
	dimHostIdx
	numFixedDims
)

// attrCache decodes attribute objects once per distinct encoding: most
// requests share their resource and many share their span attributes.
type attrCache struct {
	m map[string][]attrKV
}

type attrKV struct{ key, val string }

// scalars returns the scalar attributes of a as sorted key/value text.
// Arrays, objects and undecodable input give nothing: they cannot be
// grouped on.
func (c *attrCache) scalars(a store.Attributes) []attrKV {
	if len(a) == 0 {
		return nil
	}
	if kv, ok := c.m[string(a)]; ok {
		return kv
	}
	m, err := a.Decode()
	var kv []attrKV
	if err == nil {
		for k, v := range m {
			if coveredKeys[k] {
				continue
			}
			switch x := v.(type) {
			case string:
				kv = append(kv, attrKV{k, x})
			case json.Number:
				kv = append(kv, attrKV{k, x.String()})
			case bool:
				kv = append(kv, attrKV{k, strconv.FormatBool(x)})
			}
		}
		slices.SortFunc(kv, func(a, b attrKV) int {
			switch {
			case a.key < b.key:
				return -1
			case a.key > b.key:
				return 1
			}
			return 0
		})
	}
	if len(c.m) < 4096 {
		c.m[string(a)] = kv
	}
	return kv
}
