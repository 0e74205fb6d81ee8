package feedsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"
	"go.opentelemetry.io/otel/trace"
)

// maxBody bounds what any service reads from a request or a response.
const maxBody = 32 << 20

// instrument wraps a service's mux: the request joins the current
// generation (so its spans go to that version's providers and the
// providers outlive it), then otelhttp makes the server span.
func (c *Cluster) instrument(service string, mux http.Handler) http.Handler {
	h := otelhttp.NewHandler(mux, service,
		otelhttp.WithTracerProvider(c.tps[service]),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithPropagators(propagator()),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Admin and health calls are not the feed: no spans, and no hold on
		// a generation (a deploy through POST /admin/version waits for the
		// old generation's requests to end).
		if strings.HasPrefix(r.URL.Path, "/admin/") || r.URL.Path == "/healthz" {
			mux.ServeHTTP(w, r)
			return
		}
		g := c.acquireGeneration()
		defer g.release()
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), generationKey{}, g)))
	})
}

// acquireGeneration registers a request on the current generation.
func (c *Cluster) acquireGeneration() *generation {
	for {
		g := c.cur.Load()
		if g.acquire() {
			return g
		}
		// A deploy retired g between the load and the acquire: the new
		// generation is already stored, take it.
	}
}

func generationOf(ctx context.Context, c *Cluster) *generation {
	if g, ok := ctx.Value(generationKey{}).(*generation); ok {
		return g
	}
	return c.cur.Load()
}

// client calls one service from another over HTTP; each call is an otelhttp
// client span naming the callee in peer.service.
type client struct {
	callee string
	base   string
	http   *http.Client
}

func newClient(callee, base string, tp trace.TracerProvider, rt http.RoundTripper) *client {
	t := otelhttp.NewTransport(sizeAttributes{rt},
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithPropagators(propagator()),
		otelhttp.WithSpanOptions(trace.WithAttributes(attribute.String("peer.service", callee))),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
	)
	return &client{callee: callee, base: base, http: &http.Client{Transport: t}}
}

// sizeAttributes runs inside otelhttp's transport, where the context holds
// the client span, and records the body sizes otelhttp only records as
// metrics: payload analysis reads them from the spans.
type sizeAttributes struct{ next http.RoundTripper }

func (s sizeAttributes) RoundTrip(r *http.Request) (*http.Response, error) {
	span := trace.SpanFromContext(r.Context())
	if r.ContentLength > 0 {
		span.SetAttributes(semconv.HTTPRequestBodySize(int(r.ContentLength)))
	}
	resp, err := s.next.RoundTrip(r)
	if err == nil && resp.ContentLength >= 0 {
		span.SetAttributes(semconv.HTTPResponseBodySize(int(resp.ContentLength)))
	}
	return resp, err
}

// statusError is a non-200 answer from a dependency.
type statusError struct {
	callee string
	code   int
	msg    string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s answered %d: %s", e.callee, e.code, e.msg)
}

// do sends one request and decodes a 200 answer's JSON into out.
func (cl *client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("feedsvc: encode request to %s: %w", cl.callee, err)
		}
		rd = bytes.NewReader(b)
	}
	u := cl.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("feedsvc: request to %s: %w", cl.callee, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return fmt.Errorf("feedsvc: call %s: %w", cl.callee, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("feedsvc: read %s answer: %w", cl.callee, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
		return &statusError{callee: cl.callee, code: resp.StatusCode, msg: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("feedsvc: decode %s answer: %w", cl.callee, err)
	}
	return nil
}

// retryable: server errors and transport failures are worth another
// attempt; client errors and the caller's own deadline are not.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.code >= 500
	}
	// A per-call deadline that expired: retrying a slow dependency adds load
	// and rarely helps, so only connection-level failures are retried.
	return !errors.Is(err, context.DeadlineExceeded)
}

// call does one dependency call under the version's policy: per-call
// deadline, attempt limit, jittered backoff. Every attempt is its own
// client span, so retries show as repeated siblings in the trace.
func (c *Cluster) call(ctx context.Context, b behaviour, cl *client, method, path string, query url.Values, body, out any) error {
	attempts := b.maxAttempts
	if attempts == 0 {
		attempts = retrySafetyCeiling
	}
	for attempt := 1; ; attempt++ {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if d := b.deadlines[cl.callee]; d > 0 {
			actx, cancel = context.WithTimeout(ctx, d)
		}
		err := cl.do(actx, method, path, query, body, out)
		cancel()
		if err == nil {
			return nil
		}
		if attempt >= attempts || !retryable(ctx, err) {
			return err
		}
		if b.backoff > 0 {
			wait := b.backoff + time.Duration(c.rng.Float64()*float64(2*b.backoff))
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait+b.backoff {
				return err // no budget left for another attempt
			}
			if sleep(ctx, wait) != nil {
				return err
			}
		}
	}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeJSON answers v with an explicit Content-Length, which the caller's
// client span reads as http.response.body.size.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b) // the client went away; nothing to do
}

// httpError is an error with the status the handler answers.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// handle adapts a handler returning an error: httpErrors answer their
// status, others 500 (logged); the server span records the error.
func (c *Cluster) handle(fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		if err == nil {
			return
		}
		status := http.StatusInternalServerError
		var he *httpError
		var se *statusError
		switch {
		case errors.As(err, &he):
			status = he.status
		case errors.As(err, &se), errors.Is(err, context.DeadlineExceeded):
			status = http.StatusBadGateway
			if errors.Is(err, context.DeadlineExceeded) {
				status = http.StatusGatewayTimeout
			}
		case r.Context().Err() != nil:
			status = 499 // the caller went away (nginx's convention)
		default:
			c.log.Error("feedsvc: request failed", slog.String("path", r.URL.Path), slog.Any("err", err))
		}
		span := trace.SpanFromContext(r.Context())
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		writeJSON(w, status, map[string]string{"error": err.Error()})
	}
}

// markFault names an injected fault on the span it affected.
func markFault(ctx context.Context, name string) {
	trace.SpanFromContext(ctx).SetAttributes(attribute.String(AttrFault, name))
}

// tenantParam reads and checks the tenant query parameter.
func (c *Cluster) tenantParam(q url.Values) (Tenant, error) {
	name := q.Get("tenant")
	if name == "" {
		return Tenant{}, badRequest("tenant is required")
	}
	t, _, ok := c.tenants.lookup(name)
	if !ok {
		return Tenant{}, badRequest("unknown tenant %q (known: %s)", name, strings.Join(c.tenants.names(), ", "))
	}
	return t, nil
}

// userParam reads user_id, a positive integer.
func userParam(q url.Values) (int64, error) {
	s := q.Get("user_id")
	if s == "" {
		return 0, badRequest("user_id is required")
	}
	var id int64
	if _, err := fmt.Sscan(s, &id); err != nil || id <= 0 || fmt.Sprint(id) != s {
		return 0, badRequest("user_id %q: want a positive integer", s)
	}
	return id, nil
}
