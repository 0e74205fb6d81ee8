// Package otlpconv turns decoded OTLP traces (go.opentelemetry.io/collector/pdata)
// into store.Span rows: it validates ids and timestamps, repairs text that is
// not valid UTF-8 or holds NUL bytes, truncates over-long values, encodes
// attributes straight to the JSON form store.Attributes holds, and derives the
// analysis columns of DESIGN.md "Span row" (tenant, version, dependency,
// payload bytes, host).
//
// It accepts spans only within a time range around now (Options.MaxAge and
// MaxClockSkew) and redacts secrets and personal data before anything is
// stored (Redaction): every rule that judges or rewrites a span runs here,
// on decoded rows, whatever protocol brought them.
//
// It also decodes OTLP payloads (protobuf and JSON) with pdata's decoders;
// a payload they refuse is an error for the whole request, as the
// OpenTelemetry Collector answers it. ConvertProto decodes protobuf straight
// into rows without pdata, to the same rows, results and refusals (pdata is
// the reference it is fuzzed against).
package otlpconv

import (
	"fmt"
	"slices"
	"time"
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

	// MaxAge, when positive, rejects spans that started more than this
	// before now. Set it to the store's retention: an older span would be
	// acknowledged and then deleted by the next retention pass, and in
	// PostgreSQL each of its days would cost a partition.
	MaxAge time.Duration
	// MaxClockSkew rejects spans that start more than this after now: a
	// client's clock may run a little ahead, but a span from next year is
	// a bug or an attack (one PostgreSQL partition per day it names).
	MaxClockSkew time.Duration
	// Now is the clock the accepted range is measured from; nil means
	// time.Now.
	Now func() time.Time

	// Redaction says what is removed from spans before they are stored.
	Redaction Redaction
	// TemplateNames stores a span named after its request path or its SQL
	// statement under the name's template ("GET /users/{id}", the
	// statement's literals as ?), so that each request is not an endpoint
	// of its own (internal/spanname).
	TemplateNames bool
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
// customer.id; no extra payload keys; 4 KiB values; 1 KiB names; spans of
// any age up to one hour ahead of now; DefaultRedaction; names templated.
func DefaultOptions() Options {
	return Options{
		TenantKeys:    []string{"tenant.id", "tenant", "customer.id"},
		MaxValueBytes: 4096,
		MaxNameBytes:  1024,
		MaxClockSkew:  time.Hour,
		Redaction:     DefaultRedaction(),
		TemplateNames: true,
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
	case o.MaxAge < 0:
		return fmt.Errorf("otlpconv: max span age %v: want ≥ 0 (0 accepts any age)", o.MaxAge)
	case o.MaxClockSkew <= 0:
		return fmt.Errorf("otlpconv: max clock skew %v: want > 0", o.MaxClockSkew)
	}
	for _, k := range slices.Concat(o.TenantKeys, o.PayloadKeys) {
		if k == "" {
			return fmt.Errorf("otlpconv: empty tenant or payload key")
		}
	}
	return nil
}
