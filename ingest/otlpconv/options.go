// Package otlpconv turns decoded OTLP traces (go.opentelemetry.io/collector/pdata)
// into store.Span rows: it validates ids and timestamps, repairs text that is
// not valid UTF-8 or holds NUL bytes, truncates over-long values, encodes
// attributes straight to the JSON form store.Attributes holds, and derives the
// analysis columns of DESIGN.md "Span row" (tenant, version, dependency,
// payload bytes, host).
//
// It also decodes OTLP payloads (protobuf and JSON). The pdata decoders fail a
// whole request when one id has the wrong length; DecodeProto and DecodeJSON
// rewrite such spans so that only they are rejected (see Repair*).
package otlpconv

import (
	"fmt"
	"slices"
)

// Options configure a Converter. The zero value is not useful; start from
// DefaultOptions.
type Options struct {
	// TenantKeys are the attribute keys whose first present value becomes
	// the span's tenant. Span attributes are searched first (in this
	// order), then resource attributes (in this order).
	TenantKeys []string
	// PayloadKeys are extra attribute keys holding body sizes in bytes.
	// When any is present on a span, payload_bytes is the sum of those
	// present and the semantic-convention keys are ignored for that span.
	PayloadKeys []string
	// MaxValueBytes caps attribute values: longer strings (and byte arrays)
	// are cut at a UTF-8 boundary and listed under TruncatedKey.
	MaxValueBytes int
	// MaxNameBytes caps attribute keys, span and event names, status
	// messages and the derived text columns. These land in btree indexes,
	// whose entries PostgreSQL limits to about 2.7 kB; an index over
	// (service, name, start) holds two of them, hence the 1 KiB ceiling.
	MaxNameBytes int
}

// TruncatedKey is the attribute added to an attribute object (span,
// resource, event or link attributes) when values in it were truncated; its
// value is the array of the affected keys. Readers can tell a cut value from
// a short one, and the marker costs nothing on spans that were not cut.
const TruncatedKey = "tailscope.truncated"

// UnknownService is the service of spans whose resource has no service.name,
// as the OpenTelemetry SDKs name such services.
const UnknownService = "unknown_service"

// DefaultOptions returns the defaults: tenant keys tenant.id, tenant,
// customer.id; no extra payload keys; 4 KiB values; 1 KiB names.
func DefaultOptions() Options {
	return Options{
		TenantKeys:    []string{"tenant.id", "tenant", "customer.id"},
		MaxValueBytes: 4096,
		MaxNameBytes:  1024,
	}
}

// Validate reports the first unusable option.
func (o Options) Validate() error {
	switch {
	case o.MaxValueBytes < 16:
		return fmt.Errorf("otlpconv: max value bytes %d: want at least 16", o.MaxValueBytes)
	case o.MaxNameBytes < 16:
		return fmt.Errorf("otlpconv: max name bytes %d: want at least 16", o.MaxNameBytes)
	case o.MaxNameBytes > 1024:
		return fmt.Errorf("otlpconv: max name bytes %d: want at most 1024 (index entry limit)", o.MaxNameBytes)
	}
	for _, k := range slices.Concat(o.TenantKeys, o.PayloadKeys) {
		if k == "" {
			return fmt.Errorf("otlpconv: empty tenant or payload key")
		}
	}
	return nil
}
