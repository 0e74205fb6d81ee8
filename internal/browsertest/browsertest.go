// Package browsertest drives headless Chromium (Debian's chromium package,
// installed by .ci/run) through chromedp for page tests, and saves
// screenshots into docs/screenshots when TAILSCOPE_SCREENSHOTS names a
// directory (`make screenshots`).
package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/testenv"
)

// EnvScreenshots names the directory screenshots are written to.
const EnvScreenshots = "TAILSCOPE_SCREENSHOTS"

// Browser is one headless Chromium with one tab.
type Browser struct {
	t   testing.TB
	ctx context.Context

	mu       sync.Mutex
	problems []string // CSP violations and uncaught exceptions, in order
}

// cspReporter runs in every document before its own scripts and reports
// each Content-Security-Policy violation to the console, where the test
// hears it: a blocked script or stylesheet fails the test that loaded it
// instead of leaving a page that silently lost its behaviour.
const cspReporter = `document.addEventListener("securitypolicyviolation", e =>
  console.error("` + cspPrefix + `" + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
    " at " + e.sourceFile + ":" + e.lineNumber));`

const cspPrefix = "CSP violation: "

// New starts Chromium for the test (skipping or failing per testenv when
// there is none) and closes it at the end of the test.
func New(t testing.TB) *Browser {
	t.Helper()
	path := testenv.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelC()
		cancelA()
	})
	// Start the browser now so a missing binary fails here, clearly.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: start chromium %s: %v", path, err)
	}
	b := &Browser{t: t, ctx: ctx}
	if err := chromedp.Listen(ctx, b.hear); err != nil {
		t.Fatalf("browsertest: listen: %v", err)
	}
	report := func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspReporter})
		return chromedp.Void{}, err
	}
	if err := chromedp.Do(ctx, report); err != nil {
		t.Fatalf("browsertest: install the CSP reporter: %v", err)
	}
	// Registered after the browser's own clean-up, so it runs first,
	// while the events are all in.
	t.Cleanup(func() {
		for _, p := range b.Problems() {
			t.Errorf("browser: %s", p)
		}
	})
	return b
}

// hear records CSP violations and uncaught exceptions. It runs on
// chromedp's event loop, so it only appends under a lock.
func (b *Browser) hear(ev any) {
	var msg string
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if len(e.Args) == 0 || e.Type != runtime.ConsoleAPICalledTypeError {
			return
		}
		text := strings.Trim(string(e.Args[0].Value), `"`)
		if !strings.HasPrefix(text, cspPrefix) {
			return
		}
		msg = text
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		msg = "uncaught exception: " + d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		msg += " at " + d.URL
	default:
		return
	}
	b.mu.Lock()
	b.problems = append(b.problems, msg)
	b.mu.Unlock()
}

// Problems returns the CSP violations and uncaught exceptions seen so far.
// The test fails on any at its end; a test checking a page on purpose can
// read them earlier.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// Context is the tab's context, for chromedp calls a test makes itself.
func (b *Browser) Context() context.Context { return b.ctx }

// timeout bounds one step of a test.
const timeout = 60 * time.Second

// Do runs actions in order with a timeout, failing the test on error.
func (b *Browser) Do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// Get runs one action and returns its value, failing the test on error.
func Get[T any](b *Browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return v
}

// Screenshot saves a full-page PNG as NAME.png when EnvScreenshots is set.
// Light and dark variants come from emulating the colour scheme first.
func (b *Browser) Screenshot(name string) {
	b.t.Helper()
	// Quality 100 makes Chromium encode PNG (lower values give JPEG).
	b.save(name, chromedp.FullScreenshot(100))
}

// ScreenshotViewport saves what the window shows, for pages whose full
// length (a long result table) would make an unreadable picture.
func (b *Browser) ScreenshotViewport(name string) {
	b.t.Helper()
	b.save(name, chromedp.CaptureScreenshot())
}

func (b *Browser) save(name string, shot chromedp.Action[[]byte]) {
	b.t.Helper()
	dir := os.Getenv(EnvScreenshots)
	if dir == "" {
		return
	}
	png := Get(b, shot)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatalf("screenshot dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatalf("write screenshot: %v", err)
	}
}

// ColorScheme emulates prefers-color-scheme ("light" or "dark") for the
// pages loaded after it.
func ColorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return chromedp.Void{}, err
	}
}

// PrintPage emulates print media at about the width of an A4 page's
// text (760 CSS pixels), so layout checks see what a PDF would.
func PrintPage() chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := cdp.Call(ctx, t, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 760, Height: 1100, DeviceScaleFactor: 1})
		return chromedp.Void{}, err
	}
}

// TimeZone emulates the reader's time zone (an IANA name such as
// "Asia/Kolkata") for the pages loaded after it, so tests of local times
// do not depend on the machine's zone.
func TimeZone(name string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: name})
		return chromedp.Void{}, err
	}
}
