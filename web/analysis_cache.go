package web

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// analysisQuantum is how finely "now" is resolved for analysis requests
// with relative ranges: requests within the same quantum share a cache key,
// so a dashboard reloaded by twenty people computes once. With the cache
// TTL it bounds how long a new span can stay hidden.
const analysisQuantum = 5 * time.Second

// analysisNow is the clock for analysis requests, truncated to the quantum.
func (s *Server) analysisNow() time.Time { return s.now().Truncate(analysisQuantum) }

// cached runs compute through the cache-aside layer when one is configured.
// The key must name every input of the computation with absolute times.
// Every analysis comes here, so this is where they are bounded: identical
// concurrent requests share one computation (the cache's, or s.flights
// without a cache), which runs in the analysis pool (a slot, a memory
// budget, a time limit) and is cancelled when every request waiting for
// it has gone. A computation must not call cached itself, nor one request
// queue more at once than the pool has slots: with one slot it would wait
// for itself (TestAnalysesDoNotNest walks every route with one slot).
func cached[T any](ctx context.Context, s *Server, key string, compute func(context.Context) (T, error)) (T, error) {
	var zero T
	bounded := func(ctx context.Context) (T, error) {
		var v T
		err := s.pool.Run(ctx, func(ctx context.Context) error {
			var err error
			v, err = compute(ctx)
			return err
		})
		return v, err
	}
	if s.cache == nil {
		v, err := s.flights.Do(ctx, key, func(ctx context.Context) (any, error) { return bounded(ctx) })
		if err != nil {
			return zero, err
		}
		return v.(T), nil
	}
	b, _, err := s.cache.Get(ctx, key, func(ctx context.Context) ([]byte, error) {
		v, err := bounded(ctx)
		if err != nil {
			return nil, err
		}
		return json.Marshal(v)
	})
	if err != nil {
		return zero, err
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return zero, fmt.Errorf("decode cached %s: %w", key, err)
	}
	return v, nil
}

// queryKey is the cache key of a computation of kind over query q: every
// field of q, found by reflection so that a field added to a query type is
// in its key without anyone remembering to list it. Times are written as
// Unix nanoseconds (one instant, one key, whatever its zone), nil and empty
// slices differ (OutlierQuery.Attributes gives them different meanings),
// and map keys are sorted.
func queryKey(kind string, q any) string {
	var b strings.Builder
	b.WriteString("v2:")
	b.WriteString(kind)
	b.WriteByte(':')
	writeKeyValue(&b, reflect.ValueOf(q))
	return b.String()
}

var timeType = reflect.TypeFor[time.Time]()

func writeKeyValue(b *strings.Builder, v reflect.Value) {
	if v.Type() == timeType {
		b.WriteString(strconv.FormatInt(v.Interface().(time.Time).UnixNano(), 10))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		b.WriteByte('{')
		for i := range v.NumField() {
			f := v.Type().Field(i)
			b.WriteString(f.Name)
			b.WriteByte('=')
			if f.IsExported() {
				writeKeyValue(b, v.Field(i))
			} else {
				// Unexported fields cannot be read through reflection
				// without unsafe: name them so the key changes shape, and
				// rely on the query types having none (the key test fails
				// when one does).
				b.WriteString("?")
			}
			b.WriteByte(';')
		}
		b.WriteByte('}')
	case reflect.String:
		b.WriteString(strconv.Quote(v.String()))
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		b.WriteString(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		b.WriteString(strconv.FormatFloat(v.Float(), 'g', -1, 64))
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			b.WriteString("nil")
			return
		}
		b.WriteString("[" + strconv.Itoa(v.Len()) + ":")
		for i := range v.Len() {
			writeKeyValue(b, v.Index(i))
			b.WriteByte(',')
		}
		b.WriteByte(']')
	case reflect.Pointer:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		b.WriteByte('&')
		writeKeyValue(b, v.Elem())
	case reflect.Map:
		keys := v.MapKeys()
		texts := make([]string, len(keys))
		for i, k := range keys {
			var kb strings.Builder
			writeKeyValue(&kb, k)
			texts[i] = kb.String()
		}
		order := make([]int, len(keys))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(i, j int) int { return strings.Compare(texts[i], texts[j]) })
		b.WriteByte('{')
		for _, i := range order {
			b.WriteString(texts[i])
			b.WriteByte(':')
			writeKeyValue(b, v.MapIndex(keys[i]))
			b.WriteByte(',')
		}
		b.WriteByte('}')
	default:
		// Funcs, channels and interfaces have no value to key on; a query
		// type holding one is a mistake the key test reports.
		fmt.Fprintf(b, "<%s>", v.Kind())
	}
}
