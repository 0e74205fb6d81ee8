package otlpconv_test

import (
	"math"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailscope/tailscope/ingest/otlpconv"
)

// weightCases are spans' sampling metadata and the weight (adjusted
// count) each must give; FuzzProtoDecoderMatchesPdata's seeds carry them
// too (weightTraces).
var weightCases = []struct {
	name       string
	traceState string
	span, res  attrs
	want       float64
}{
	{"unsampled", "", nil, nil, 1},
	{"th:0 keeps all", "ot=th:0", nil, nil, 1},
	{"th:8 keeps half", "ot=th:8", nil, nil, 2},
	{"th:c keeps a quarter", "ot=th:c", nil, nil, 4},
	{"th:fd70a4 keeps ~1%", "ot=th:fd70a4", nil, nil, 1 / (1 - float64(0xfd70a4)/float64(1<<24))},
	{"14 digits", "ot=th:ffffffffffffff", nil, nil, 1 << 56},
	{"th with other ot sub-keys", "ot=rv:abcdef01234567;th:c;foo:bar", nil, nil, 4},
	{"ot among vendors", "congo=t61rcWkgMzE, ot=th:8 ,rojo=00f067aa0ba902b7", nil, nil, 2},
	{"ot last, tab-separated", "rojo=1,\tot=th:c", nil, nil, 4},
	{"a vendor's th is not ot's", "vendor=th:8,acme@ot=th:8", nil, nil, 1},
	{"ot without th", "ot=rv:abcdef01234567", nil, nil, 1},
	{"15 digits are invalid", "ot=th:fffffffffffffff", nil, nil, 1},
	{"empty th is invalid", "ot=th:", nil, nil, 1},
	{"upper-case hex is invalid", "ot=th:C", nil, nil, 1},
	{"non-hex is invalid", "ot=th:0x8", nil, nil, 1},
	{"invalid th falls back to SampleRate", "ot=th:zz", attrs{{"SampleRate", 10}}, nil, 10},
	{"th beats SampleRate", "ot=th:8", attrs{{"SampleRate", 10}}, nil, 2},
	{"SampleRate int", "", attrs{{"SampleRate", 20}}, nil, 20},
	{"SampleRate double", "", attrs{{"SampleRate", 12.5}}, nil, 12.5},
	{"SampleRate string", "", attrs{{"SampleRate", " 7 "}}, nil, 7},
	{"SampleRate 1", "", attrs{{"SampleRate", 1}}, nil, 1},
	{"SampleRate 0", "", attrs{{"SampleRate", 0}}, nil, 1},
	{"SampleRate negative", "", attrs{{"SampleRate", -5}}, nil, 1},
	{"SampleRate fraction", "", attrs{{"SampleRate", 0.5}}, nil, 1},
	{"SampleRate not a number", "", attrs{{"SampleRate", "ten"}}, nil, 1},
	{"SampleRate NaN", "", attrs{{"SampleRate", math.NaN()}}, nil, 1},
	{"SampleRate infinite", "", attrs{{"SampleRate", "Inf"}}, nil, 1},
	{"SampleRate bool", "", attrs{{"SampleRate", true}}, nil, 1},
	{"SampleRate huge is capped", "", attrs{{"SampleRate", 1e300}}, nil, 1 << 56},
	{"resource SampleRate", "", nil, attrs{{"SampleRate", 5}}, 5},
	{"span SampleRate beats resource", "", attrs{{"SampleRate", 3}}, attrs{{"SampleRate", 5}}, 3},
	{"invalid span SampleRate does not fall back", "", attrs{{"SampleRate", "x"}}, attrs{{"SampleRate", 5}}, 5},
	{"sampling.priority is no rate", "", attrs{{"sampling.priority", 1}}, nil, 1},
	{"sampling.priority high is no rate", "", attrs{{"sampling.priority", 10}}, nil, 1},
}

func (tc weightSpec) apply(res pcommon.Map, sp ptrace.Span) {
	sp.TraceState().FromRaw(tc.traceState)
	tc.span.putTo(sp.Attributes())
	tc.res.putTo(res)
}

type weightSpec struct {
	traceState string
	span, res  attrs
}

// TestWeight checks each case through both decoders: Convert (OTLP/JSON,
// gRPC) and ConvertProto (OTLP/HTTP protobuf).
func TestWeight(t *testing.T) {
	c := newConverter(t, nil)
	var pm ptrace.ProtoMarshaler
	for _, tc := range weightCases {
		t.Run(tc.name, func(t *testing.T) {
			spec := weightSpec{tc.traceState, tc.span, tc.res}
			td := oneSpan(spec.apply)
			if s := convertOne(t, c, td); s.Weight != tc.want {
				t.Errorf("Convert: weight %v, want %v", s.Weight, tc.want)
			}
			body, err := pm.MarshalTraces(td)
			if err != nil {
				t.Fatal(err)
			}
			spans, _, err := c.ConvertProto(body)
			if err != nil || len(spans) != 1 {
				t.Fatalf("ConvertProto: %d spans, %v", len(spans), err)
			}
			if spans[0].Weight != tc.want {
				t.Errorf("ConvertProto: weight %v, want %v", spans[0].Weight, tc.want)
			}
		})
	}
}

// TestWeightRedactedSampleRate: a SampleRate whose key redaction denies
// gives no weight; derivation never reads what redaction removed.
func TestWeightRedactedSampleRate(t *testing.T) {
	c := newConverter(t, func(o *otlpconv.Options) { o.Redaction.Keys = append(o.Redaction.Keys, "SampleRate") })
	s := convertOne(t, c, oneSpan(func(_ pcommon.Map, sp ptrace.Span) { sp.Attributes().PutInt("SampleRate", 10) }))
	if s.Weight != 1 {
		t.Errorf("weight %v from a redacted SampleRate, want 1", s.Weight)
	}
}

// weightTraces is a request holding every weight case, one resource each,
// for the differential fuzz target's seeds.
func weightTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	for i, tc := range weightCases {
		one := oneSpan(weightSpec{tc.traceState, tc.span, tc.res}.apply)
		rs := one.ResourceSpans().At(0)
		sp := rs.ScopeSpans().At(0).Spans().At(0)
		sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
		rs.MoveTo(td.ResourceSpans().AppendEmpty())
	}
	return td
}
