package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tailscope/tailscope/internal/validate"
	"github.com/tailscope/tailscope/internal/wire"
	"github.com/tailscope/tailscope/store"
)

func decodeBudgetBody(t *testing.T, body string) (store.Budget, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/api/v1/budgets", strings.NewReader(body))
	return decodeBudget(httptest.NewRecorder(), r)
}

func TestDecodeBudget(t *testing.T) {
	const valid = `{"name":"n","service":"s","endpoint":"e","threshold_ms":500,"target":0.99,"period":"30d","hops":[{"service":"s","dependency":"d","allocation_ms":20}]}`
	tests := []struct {
		name   string
		body   string
		status int    // 0: valid
		want   string // error substring
		fields []validate.FieldError
	}{
		{"valid", valid, 0, "", nil},
		{"go duration period", `{"service":"s","endpoint":"e","threshold_ms":500,"target":0.99,"period":"12h"}`, 0, "", nil},
		{"unknown field", `{"service":"s","endpoint":"e","threshold_ms":500,"target":0.99,"period":"30d","treshold":1}`, 400, `unknown field "treshold"`, nil},
		{"unknown hop field", `{"service":"s","endpoint":"e","threshold_ms":500,"target":0.99,"period":"30d","hops":[{"service":"s","alloc":3}]}`, 400, `unknown field "alloc"`, nil},
		{"wrong type", `{"service":"s","endpoint":"e","threshold_ms":"500ms","target":0.99,"period":"30d"}`, 400, `field "threshold_ms": want float64`, nil},
		{"trailing data", `{"service":"s","endpoint":"e","threshold_ms":500,"target":0.99,"period":"30d"} {}`, 400, "data after the JSON object", nil},
		{"empty", ``, 400, "empty", nil},
		{"malformed", `{"service":`, 400, "not valid JSON", nil},
		{"oversized", `{"name":"` + strings.Repeat("x", maxJSONBody) + `"}`, 413, "request body over", nil},
		{"bad period", `{"service":"s","endpoint":"e","threshold_ms":500,"target":0.99,"period":"a month"}`, 400, `period: duration "a month"`,
			[]validate.FieldError{{Field: "period", Index: -1}}},
		{"missing period", `{"service":"s","endpoint":"e","threshold_ms":500,"target":0.99}`, 400, "period is required",
			[]validate.FieldError{{Field: "period", Index: -1}}},
		{"huge threshold", `{"service":"s","endpoint":"e","threshold_ms":1e300,"target":0.99,"period":"30d"}`, 400, "threshold_ms: 1e+300 is not a usable",
			[]validate.FieldError{{Field: "threshold_ms", Index: -1}}},
		{"validation runs", `{"service":"","endpoint":"e","threshold_ms":-1,"target":0.99,"period":"30d","hops":[{"service":"s","allocation_ms":-2}]}`, 400, "threshold must be positive",
			[]validate.FieldError{{Field: "service", Index: -1}, {Field: "threshold_ms", Index: -1}, {Field: "hops.allocation_ms", Index: 0}}},
		{"unknown hop measure", strings.Replace(valid, `"period":"30d"`, `"period":"30d","hop_measure":"wall"`, 1), 400, `hop measure "wall"`,
			[]validate.FieldError{{Field: "hop_measure", Index: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := decodeBudgetBody(t, tt.body)
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("decodeBudget = %v", err)
				}
				if b.Service != "s" || b.Threshold != 500*time.Millisecond || b.Target != 0.99 {
					t.Errorf("decoded %+v", b)
				}
				return
			}
			status, msg := errorStatus(err)
			if status != tt.status || !strings.Contains(msg, tt.want) {
				t.Errorf("decodeBudget error %v (%d %q), want %d saying %q", err, status, msg, tt.status, tt.want)
			}
			var verr validate.ValidationError
			errors.As(err, &verr)
			if len(verr) != len(tt.fields) {
				t.Fatalf("field errors %+v, want %+v", verr, tt.fields)
			}
			for i, f := range tt.fields {
				if verr[i].Field != f.Field || verr[i].Index != f.Index {
					t.Errorf("field error %d = %+v, want field %s index %d", i, verr[i], f.Field, f.Index)
				}
			}
		})
	}
}

func TestBudgetJSONRoundTrip(t *testing.T) {
	b := store.Budget{
		ID: 7, Name: "feed p99", Service: "feed-api", Endpoint: "GET /v1/feed", Threshold: 100 * time.Millisecond, Target: 0.99,
		Period: 36 * time.Hour, HopMeasure: store.HopOwnTime, CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Hops: []store.HopBudget{{Service: "feed-api", Dependency: "profile-svc", Allocation: 30 * time.Millisecond}},
	}
	j, err := json.Marshal(wire.FromBudget(b))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"period":"1d12h"`) || !strings.Contains(string(j), `"hop_measure":"own_time"`) {
		t.Errorf("encoded %s", j)
	}
	// The id and timestamps are the store's; a client sending them back
	// is not an error, and they are not taken from the body.
	back, err := decodeBudgetBody(t, string(j))
	if err != nil {
		t.Fatalf("decode %s: %v", j, err)
	}
	b.ID, b.CreatedAt = 0, time.Time{}
	if !reflect.DeepEqual(back, b) {
		t.Errorf("round trip: %+v, want %+v", back, b)
	}
}
