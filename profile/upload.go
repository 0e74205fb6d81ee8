package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
)

// upload is one /ingest request before its pprof payload is decoded.
type upload struct {
	service string
	// typeHint is the profile type named by an old-style application
	// name ("app.cpu", "app.mutex_count"): pyroscope-go before 1.0 named
	// the type there; 1.x names it in the pprof sample types and in
	// sample_type_config.
	typeHint string
	labels   map[string]string
	// from and until are the window the client reports; zero when absent.
	from, until time.Time
	// sampleRate is the CPU sampling rate in Hz, used only for profiles
	// whose CPU values are bare sample counts.
	sampleRate int64
	pprof      []byte // as sent: gzip-compressed or not
	types      map[string]sampleTypeConfig
}

// sampleTypeConfig is one entry of the sample_type_config part, which
// pyroscope-go sends to say what each pprof sample type is (mutex and block
// profiles have the same sample types and differ only by display name).
type sampleTypeConfig struct {
	Units       string `json:"units,omitempty"`
	Aggregation string `json:"aggregation,omitempty"`
	DisplayName string `json:"display-name,omitempty"`
	Sampled     bool   `json:"sampled,omitempty"`
	Cumulative  bool   `json:"cumulative,omitempty"`
}

// Limits on the parts of an upload that are not the profile itself.
const (
	maxServiceBytes     = 256
	maxLabels           = 64
	maxLabelKeyBytes    = 128
	maxLabelValueBytes  = 1024
	maxParts            = 8
	maxTypeConfigBytes  = 64 << 10
	maxSpanNameBytes    = 512
	maxFrameBytes       = 1024
	truncatedFrameName  = "[truncated stack]"
	unknownFunctionName = "?"
)

// oldTypeSuffixes are the type suffixes pre-1.0 clients appended to the
// application name.
var oldTypeSuffixes = []string{
	"cpu", "alloc_objects", "alloc_space", "inuse_objects", "inuse_space", "goroutines",
	"mutex_count", "mutex_duration", "block_count", "block_duration",
}

// ingestError is a request the handler refuses, with its status.
type ingestError struct {
	status  int
	outcome string
	msg     string
}

func (e *ingestError) Error() string { return e.msg }

func badRequest(format string, args ...any) *ingestError {
	return &ingestError{http.StatusBadRequest, outcomeBadRequest, fmt.Sprintf(format, args...)}
}

func tooLarge(format string, args ...any) *ingestError {
	return &ingestError{http.StatusRequestEntityTooLarge, outcomeTooLarge, fmt.Sprintf(format, args...)}
}

// parseQuery reads the query parameters pyroscope-go sends: name (the
// application name with labels: app{k=v,...}), from and until (Unix time;
// pyroscope-go 1.x sends nanoseconds, older clients seconds), sampleRate,
// and format. spyName, units and aggregationType are accepted and ignored:
// the pprof payload says what its values are.
func parseQuery(q url.Values) (upload, error) {
	var u upload
	if f := q.Get("format"); f != "" && f != "pprof" {
		return u, badRequest("format %q is not supported: send pprof", truncate(f, 40))
	}
	name := q.Get("name")
	if name == "" {
		return u, badRequest("missing name: want ?name=app{label=value,...}")
	}
	var err error
	if u.service, u.typeHint, u.labels, err = parseName(name); err != nil {
		return u, err
	}
	if u.from, err = parseUnixTime("from", q.Get("from")); err != nil {
		return u, err
	}
	if u.until, err = parseUnixTime("until", q.Get("until")); err != nil {
		return u, err
	}
	if r := q.Get("sampleRate"); r != "" {
		n, err := strconv.ParseInt(r, 10, 64)
		if err != nil || n < 0 {
			return u, badRequest("sampleRate %q: want a non-negative integer", truncate(r, 40))
		}
		u.sampleRate = n
	}
	return u, nil
}

// parseName splits "app.cpu{k=v,k2=v2}" into the service ("app"), the
// old-style type suffix ("cpu") and the labels. The grammar is Pyroscope's:
// no quoting, so values cannot hold ',' or '}'.
func parseName(name string) (service, hint string, labels map[string]string, err error) {
	service, rest, hasLabels := strings.Cut(name, "{")
	service = strings.TrimSpace(service)
	for _, s := range oldTypeSuffixes {
		if base, ok := strings.CutSuffix(service, "."+s); ok && base != "" {
			service, hint = base, s
			break
		}
	}
	switch {
	case service == "":
		return "", "", nil, badRequest("name %q: empty application name", truncate(name, 80))
	case len(service) > maxServiceBytes:
		return "", "", nil, badRequest("application name of %d bytes: at most %d", len(service), maxServiceBytes)
	case !utf8.ValidString(service) || strings.ContainsRune(service, 0):
		return "", "", nil, badRequest("application name is not valid UTF-8 text")
	}
	labels = map[string]string{}
	if !hasLabels {
		return service, hint, labels, nil
	}
	body, _, closed := strings.Cut(rest, "}")
	if !closed {
		return "", "", nil, badRequest("name %q: labels not closed with '}'", truncate(name, 80))
	}
	for pair := range strings.SplitSeq(body, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return "", "", nil, badRequest("name %q: label %q is not key=value", truncate(name, 80), truncate(pair, 40))
		}
		if len(k) > maxLabelKeyBytes {
			return "", "", nil, badRequest("label key of %d bytes: at most %d", len(k), maxLabelKeyBytes)
		}
		if len(labels) == maxLabels {
			return "", "", nil, badRequest("more than %d labels", maxLabels)
		}
		labels[cleanText(k, maxLabelKeyBytes)] = cleanText(v, maxLabelValueBytes)
	}
	return service, hint, labels, nil
}

// parseUnixTime reads a Unix time in seconds, milliseconds, microseconds or
// nanoseconds, told apart by magnitude as Pyroscope does: pre-1.0 clients
// send seconds, pyroscope-go 1.x nanoseconds. "" gives the zero time.
func parseUnixTime(param, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, badRequest("%s %q: want a positive Unix time", param, truncate(v, 40))
	}
	switch {
	case n < 1e11:
		return time.Unix(n, 0), nil
	case n < 1e14:
		return time.UnixMilli(n), nil
	case n < 1e17:
		return time.UnixMicro(n), nil
	}
	return time.Unix(0, n), nil
}

// readBody reads the request body, at most maxBytes: a multipart form as
// pyroscope-go sends it (parts profile, sample_type_config and, from old
// clients, previous_profile, which is ignored), or the pprof payload itself.
func readBody(body io.Reader, contentType string, u *upload) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		// Not a form: the body is the profile (application/octet-stream
		// and friends, or no type at all).
		b, err := io.ReadAll(body)
		if err != nil {
			return readError(err)
		}
		u.pprof = b
		return nil
	}
	if mt != "multipart/form-data" || params["boundary"] == "" {
		return badRequest("content type %q: want multipart/form-data with a boundary", truncate(contentType, 80))
	}
	mr := multipart.NewReader(body, params["boundary"])
	for n := 0; ; n++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return readError(err)
		}
		if n == maxParts {
			return badRequest("more than %d parts in the form", maxParts)
		}
		switch part.FormName() {
		case "profile":
			if u.pprof != nil {
				return badRequest("two profile parts in the form")
			}
			b, err := io.ReadAll(part)
			if err != nil {
				return readError(err)
			}
			u.pprof = b
		case "sample_type_config":
			b, err := io.ReadAll(io.LimitReader(part, maxTypeConfigBytes+1))
			if err != nil {
				return readError(err)
			}
			if len(b) > maxTypeConfigBytes {
				return tooLarge("sample_type_config exceeds %d bytes", maxTypeConfigBytes)
			}
			if err := json.Unmarshal(b, &u.types); err != nil {
				return badRequest("sample_type_config: %v", err)
			}
		default:
			// previous_profile (old clients' cumulative profiles) and
			// anything else: read past it; the byte limit still applies.
			if _, err := io.Copy(io.Discard, part); err != nil {
				return readError(err)
			}
		}
	}
	if u.pprof == nil {
		return badRequest("no profile part in the form")
	}
	return nil
}

// readError classifies an error from reading the body: over the byte limit
// is 413, anything else (a truncated form, a client gone) 400.
func readError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge("body exceeds the limit of %d bytes", mbe.Limit)
	}
	return badRequest("read body: %v", err)
}

// decompress returns the pprof protobuf of a payload, gunzipping it when it
// is compressed (as Go's runtime writes it), at most limit bytes: a gzip
// bomb stops at the limit instead of filling memory.
func decompress(b []byte, limit int64) ([]byte, error) {
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		if int64(len(b)) > limit {
			return nil, tooLarge("profile of %d bytes exceeds the limit of %d", len(b), limit)
		}
		return b, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, badRequest("profile: gzip: %v", err)
	}
	var out bytes.Buffer
	out.Grow(int(min(int64(len(b))*4, limit)) + bytes.MinRead)
	n, err := out.ReadFrom(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, badRequest("profile: gzip: %v", err)
	}
	if n > limit {
		return nil, tooLarge("decompressed profile exceeds the limit of %d bytes", limit)
	}
	return out.Bytes(), nil
}

// cleanText makes s storable text of at most max bytes: invalid UTF-8 and
// NUL become U+FFFD, and a cut never splits a character.
func cleanText(s string, max int) string {
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	}
	return truncate(s, max)
}

// truncate cuts s to at most max bytes on a character boundary.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
