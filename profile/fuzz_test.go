package profile

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

// FuzzIngest feeds arbitrary application names, content types and bodies
// through the handler's whole decode path (form parsing, decompression,
// the pprof decoder, conversion). Whatever comes in, the answer is 200
// with a batch the store contract accepts (checkWriter would turn a bad one
// into a 503), 400 or 413 — never a panic, a 5xx, or a hang.
func FuzzIngest(f *testing.F) {
	cfg := DefaultConfig()
	// Small limits keep each input cheap, so the fuzzer explores more.
	cfg.MaxRequestBytes = 1 << 20
	cfg.MaxProfileBytes = 2 << 20
	cfg.MaxSamples = 5_000
	cfg.MaxLocations = 5_000
	h := newTestHandler(f, cfg, checkWriter{})

	cpu := cpuPprof().
		sample("runtime.main;main.main+main.inlined;main.burn", []int64{2, 20_000_000}, "span_id=00f067aa0ba902b7", "span_name=GET /").
		sample("runtime.main;main.main", []int64{1, 10_000_000})
	heap := newPprof("alloc_objects/count", "alloc_space/bytes", "inuse_objects/count", "inuse_space/bytes").
		sample("main.main;main.alloc", []int64{3, 4096, 1, 512})
	mutex := newPprof("contentions/count", "delay/nanoseconds").sample("main.lock", []int64{2, 900})
	gz, raw := cpu.bytes(f), cpu.rawBytes(f)
	cpuForm, cpuCT := form(f, gz, nil)
	heapForm, heapCT := form(f, heap.bytes(f), map[string]sampleTypeConfig{"alloc_objects": {Units: "objects"}})
	mutexForm, mutexCT := form(f, mutex.bytes(f), map[string]sampleTypeConfig{"contentions": {DisplayName: "mutex_count"}, "delay": {DisplayName: "mutex_duration"}})
	f.Add("feedsvc{__session_id__=abc,process.runtime.name=go}", cpuCT, cpuForm)
	f.Add("feedsvc.cpu", "application/octet-stream", gz)
	f.Add("app", "", raw)
	f.Add("app{a=b}", heapCT, heapForm)
	f.Add("app.mutex_count", mutexCT, mutexForm)
	f.Add("app", "application/octet-stream", raw[:len(raw)/2])
	f.Add("app", cpuCT, cpuForm[:len(cpuForm)/2])
	f.Add("app{", "multipart/form-data; boundary=x", []byte("--x\r\n\r\n--x--"))
	f.Add("app", "application/octet-stream", []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})

	f.Fuzz(func(t *testing.T, name, contentType string, body []byte) {
		q := url.Values{"name": {name}, "from": {"1748779200000000000"}, "until": {"1748779210000000000"}}
		rec := post(h, IngestPath+"?"+q.Encode(), contentType, body)
		switch rec.Code {
		case http.StatusOK:
			var resp map[string]int
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp["profiles"] < 1 {
				t.Fatalf("200 with body %q", rec.Body)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var e map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e["error"] == "" {
				t.Fatalf("%d with body %q", rec.Code, rec.Body)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
