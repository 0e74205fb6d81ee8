package ingest

import (
	"context"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/tailscope/tailscope/ingest/otlpconv"
	"github.com/tailscope/tailscope/store"
)

// Authenticator checks ingest tokens (internal/auth implements it). With
// one configured and Required, every export must carry a known token in
// Authorization: Bearer (OTLP/HTTP header, gRPC metadata; the OTLP
// exporters' "headers" setting sends it).
type Authenticator interface {
	IngestRequired() bool
	// Ingest returns the token's name and the tenant it may write ("" for
	// any), or ok false for an unknown token.
	Ingest(token string) (name, tenant string, ok bool)
}

// outcomeUnauthenticated counts exports without a valid token.
const outcomeUnauthenticated = "unauthenticated"

// unauthenticatedMessage is what a refused exporter hears.
const unauthenticatedMessage = "an ingest token is required: send Authorization: Bearer <token> (OTLP exporter headers)"

// caller checks an export's Authorization value; tenant is the only tenant
// its spans may name ("" for any).
func (r *Receiver) caller(authorization string) (tenant string, ok bool) {
	if r.cfg.Auth == nil || !r.cfg.Auth.IngestRequired() {
		return "", true
	}
	scheme, tok, found := strings.Cut(strings.TrimSpace(authorization), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	_, tenant, ok = r.cfg.Auth.Ingest(strings.TrimSpace(tok))
	return tenant, ok
}

// grpcAuthorization is the authorization metadata of a gRPC call.
func grpcAuthorization(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// keepTenant holds a tenant-bound token to its tenant: spans naming
// another tenant are dropped and counted in res (a token for acme cannot
// write spans that say they are hooli's), spans naming none are stored as
// the token's tenant's.
func keepTenant(spans []store.Span, tenant string, res *otlpconv.Result) []store.Span {
	if tenant == "" {
		return spans
	}
	kept := spans[:0]
	for _, s := range spans {
		switch s.Tenant {
		case "":
			s.Tenant = tenant
			kept = append(kept, s)
		case tenant:
			kept = append(kept, s)
		}
	}
	if n := len(spans) - len(kept); n > 0 {
		res.Reject(otlpconv.ReasonWrongTenant, n)
	}
	return kept
}
