package otlpconv_test

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tailscope/tailscope/ingest/internal/otlptest"
	"github.com/tailscope/tailscope/ingest/otlpconv"
)

// BenchmarkDecode is the decode-only ceiling of the receiver: pdata
// unmarshal, validation, attribute encoding and derivation of 100-span
// requests shaped like the feed demo's, without HTTP or storage. spans/s is
// per core when run with -cpu 1.
func BenchmarkDecode(b *testing.B) {
	td := otlptest.FeedTraces(100, 1)
	var pm ptrace.ProtoMarshaler
	pb, err := pm.MarshalTraces(td)
	if err != nil {
		b.Fatal(err)
	}
	var jm ptrace.JSONMarshaler
	jb, err := jm.MarshalTraces(td)
	if err != nil {
		b.Fatal(err)
	}
	conv, err := otlpconv.NewConverter(otlpconv.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		body   []byte
		decode func([]byte) (ptrace.Traces, error)
	}{
		{"protobuf", pb, otlpconv.DecodeProto},
		{"json", jb, otlpconv.DecodeJSON},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			spans := 0
			for b.Loop() {
				td, err := bc.decode(bc.body)
				if err != nil {
					b.Fatal(err)
				}
				out, _ := conv.Convert(td)
				spans += len(out)
			}
			b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
		})
	}
	b.Run("convert-only", func(b *testing.B) {
		b.ReportAllocs()
		spans := 0
		for b.Loop() {
			out, _ := conv.Convert(td)
			spans += len(out)
		}
		b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
	})
	b.Run("unmarshal-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := otlpconv.DecodeProto(pb); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "spans/s")
	})
}
