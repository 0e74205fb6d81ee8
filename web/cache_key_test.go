package web

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/analysis"
)

// TestQueryKeyCoversEveryField sets each field of each cached query type,
// one at a time, and checks the key changes: a field added to a query type
// later is covered without editing this test (issue 15, item 7).
func TestQueryKeyCoversEveryField(t *testing.T) {
	for _, q := range []any{
		analysis.ServicesQuery{},
		analysis.LatencyQuery{},
		analysis.OutlierQuery{},
		analysis.CompareQuery{},
		complianceQuery{},
		endpointsQuery{},
	} {
		typ := reflect.TypeOf(q)
		t.Run(typ.Name(), func(t *testing.T) {
			base := queryKey("k", q)
			seen := map[string]string{base: "zero value"}
			for _, m := range mutations(t, typ, typ.Name()) {
				v := reflect.New(typ).Elem()
				m.set(v)
				key := queryKey("k", v.Interface())
				if prev, dup := seen[key]; dup {
					t.Errorf("setting %s gives the same key as %s: %s", m.path, prev, key)
				}
				seen[key] = m.path
			}
			if len(seen) < 2 {
				t.Fatalf("no field of %s was varied", typ)
			}
		})
	}
}

func TestQueryKeyIsPerInstantAndPerKind(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	q := analysis.ServicesQuery{From: at, To: at.Add(time.Hour)}
	inParis := analysis.ServicesQuery{From: at.In(time.FixedZone("CET", 3600)), To: at.Add(time.Hour).In(time.FixedZone("CET", 3600))}
	if queryKey("services", q) != queryKey("services", inParis) {
		t.Error("the same instants in another zone give another key")
	}
	if queryKey("services", q) == queryKey("endpoints", q) {
		t.Error("two kinds of computation share a key")
	}
	nilAttrs := analysis.OutlierQuery{}
	noAttrs := analysis.OutlierQuery{Attributes: []string{}}
	if queryKey("outliers", nilAttrs) == queryKey("outliers", noAttrs) {
		t.Error("nil Attributes (discover) and empty Attributes (none) share a key")
	}
}

type mutation struct {
	path string
	set  func(v reflect.Value) // v is an addressable zero value of the root type
}

// mutations lists one change per leaf field of typ, reached through
// nested structs and the first element of slices.
func mutations(t *testing.T, typ reflect.Type, path string) []mutation {
	t.Helper()
	if typ == timeType {
		return []mutation{{path, func(v reflect.Value) { v.Set(reflect.ValueOf(time.Unix(1, 0))) }}}
	}
	switch typ.Kind() {
	case reflect.Struct:
		var out []mutation
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				t.Errorf("%s.%s is unexported: queryKey cannot see it", path, f.Name)
				continue
			}
			for _, m := range mutations(t, f.Type, path+"."+f.Name) {
				set := m.set
				out = append(out, mutation{m.path, func(v reflect.Value) { set(v.Field(i)) }})
			}
		}
		return out
	case reflect.Slice:
		out := []mutation{{path + "[]", func(v reflect.Value) { v.Set(reflect.MakeSlice(typ, 0, 0)) }}}
		for _, m := range mutations(t, typ.Elem(), path+"[0]") {
			set := m.set
			out = append(out, mutation{m.path, func(v reflect.Value) {
				v.Set(reflect.MakeSlice(typ, 1, 1))
				set(v.Index(0))
			}})
		}
		return out
	case reflect.String:
		return []mutation{{path, func(v reflect.Value) { v.SetString("x") }}}
	case reflect.Bool:
		return []mutation{{path, func(v reflect.Value) { v.SetBool(true) }}}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return []mutation{{path, func(v reflect.Value) { v.SetInt(1) }}}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return []mutation{{path, func(v reflect.Value) { v.SetUint(1) }}}
	case reflect.Float32, reflect.Float64:
		return []mutation{{path, func(v reflect.Value) { v.SetFloat(0.5) }}}
	}
	t.Errorf("%s: %s fields cannot be keyed; add the kind to queryKey and to this test", path, typ.Kind())
	return nil
}

func TestQueryKeyIsReadable(t *testing.T) {
	k := queryKey("latency", analysis.LatencyQuery{Service: "feed-api", Step: time.Minute})
	if !strings.HasPrefix(k, "v2:latency:{") || !strings.Contains(k, `Service="feed-api"`) || !strings.Contains(k, "Step=60000000000") {
		t.Errorf("key %s does not name the kind and the fields", k)
	}
}
