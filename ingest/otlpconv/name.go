package otlpconv

// Span names that carry values are stored as their template
// (internal/spanname; templateSpanName in convert.go, Options.TemplateNames):
// a request path's route or ids as {id}, a statement's literals as ?.

// OriginalNameKey is the span attribute that keeps a span's name as sent
// when it was stored as its template and the span carries no URL
// attribute (url.path, url.full, http.target or http.url) that tells it.
const OriginalNameKey = "tailscope.original_name"
