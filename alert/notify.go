package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tailscope/tailscope/analysis"
	"github.com/tailscope/tailscope/internal/units"
	"github.com/tailscope/tailscope/store"
)

// Target is a webhook: Format "json" (the Notification below) or "slack"
// (a Slack-compatible incoming-webhook payload).
type Target struct {
	URL    string
	Format string
}

// ParseTarget reads a --alert-webhook value: a URL, or "slack=URL" /
// "json=URL".
func ParseTarget(s string) (Target, error) {
	t := Target{URL: strings.TrimSpace(s), Format: "json"}
	if f, u, ok := strings.Cut(t.URL, "="); ok && (f == "slack" || f == "json") {
		t.Format, t.URL = f, u
	}
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return t, fmt.Errorf("alert webhook %q: want an http(s) URL, optionally prefixed slack= or json=", s)
	}
	return t, nil
}

// Notification is the JSON body sent to "json" targets.
type Notification struct {
	// ID is the same for every attempt of one event of one firing:
	// receivers use it (also sent as the Idempotency-Key header) to drop
	// a repeat.
	ID         string            `json:"id"`
	Event      string            `json:"event"`
	FiringID   int64             `json:"firing_id"`
	Summary    string            `json:"summary"`
	Budget     budgetJSON        `json:"budget"`
	Rule       RuleJSON          `json:"rule"`
	Burn       burnJSON          `json:"burn"`
	StartedAt  time.Time         `json:"started_at"`
	ResolvedAt *time.Time        `json:"resolved_at"`
	Cause      *causeJSON        `json:"cause"`
	Links      map[string]string `json:"links"`
}

type budgetJSON struct {
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	Service     string  `json:"service"`
	Endpoint    string  `json:"endpoint"`
	ThresholdMs float64 `json:"threshold_ms"`
	Target      float64 `json:"target"`
}

// RuleJSON is a burn rule as notifications and the API write it.
type RuleJSON struct {
	Name     string  `json:"name"`
	Severity string  `json:"severity"`
	Factor   float64 `json:"factor"`
	Long     string  `json:"long"`
	Short    string  `json:"short"`
}

// RuleOf writes a rule as JSON.
func RuleOf(r analysis.BurnRule) RuleJSON {
	return RuleJSON{Name: r.Name(), Severity: r.Severity, Factor: r.Factor, Long: analysis.WindowText(r.Long), Short: analysis.WindowText(r.Short)}
}

type burnJSON struct {
	Long  float64 `json:"long"`
	Short float64 `json:"short"`
}

type causeJSON struct {
	Label        string  `json:"label"`
	Share        float64 `json:"share"`
	P99IfFixedMs float64 `json:"p99_if_fixed_ms"`
	Grouped      bool    `json:"grouped"`
}

// notificationID names one event of one firing.
func notificationID(f store.AlertFiring, ev store.AlertEvent) string {
	return "tailscope-alert-" + strconv.FormatInt(f.ID, 10) + "-" + string(ev)
}

// CauseText is the cause as notifications and the budget page say it.
func CauseText(f store.AlertFiring) string {
	switch {
	case f.Cause == "":
		return ""
	case f.CauseShare > 0:
		return fmt.Sprintf("%s of the tail: %s, p99 if fixed %s", strconv.FormatFloat(100*f.CauseShare, 'f', 0, 64)+"%", f.Cause, units.Ms(f.FixedP99Ms))
	default:
		return f.Cause // the analysis' verdict: no dominant cause
	}
}

// Links are the pages a firing points to, with absolute times: the
// outliers of the endpoint over the window that burned, the budget, and
// an incident prefilled with that window.
func Links(base string, b store.Budget, f store.AlertFiring) map[string]string {
	to := f.StartedAt
	if !f.ResolvedAt.IsZero() {
		to = f.ResolvedAt
	}
	from := f.StartedAt.Add(-min(f.Long, causeWindow))
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	out := map[string]string{
		"budget": base + "/budgets/" + strconv.FormatInt(b.ID, 10),
		"outliers": base + "/outliers?" + url.Values{"service": {b.Service}, "endpoint": {b.Endpoint}, "from": {ts(from)}, "to": {ts(to)},
			"threshold_ms": {strconv.FormatFloat(float64(b.Threshold)/1e6, 'f', -1, 64)}}.Encode(),
		"open_incident": base + "/incidents/new?" + url.Values{"title": {"Budget " + b.Name + " burning: " + f.Rule}, "from": {ts(from)},
			"to": {ts(to)}, "service": {b.Service}}.Encode(),
	}
	return out
}

// summary is the one line every format leads with.
func summary(b store.Budget, f store.AlertFiring, ev store.AlertEvent) string {
	head := fmt.Sprintf("Budget %q (%s %s, %s under %s)", b.Name, b.Service, b.Endpoint, units.SLOPercent(b.Target), units.Duration(b.Threshold))
	if ev == store.AlertResolved {
		return fmt.Sprintf("Resolved: %s no longer burns at %s× over %s and %s (now %s× and %s×).", head,
			strconv.FormatFloat(f.Factor, 'f', -1, 64), analysis.WindowText(f.Long), analysis.WindowText(f.Short), burnText(f.LongBurn), burnText(f.ShortBurn))
	}
	s := fmt.Sprintf("%s burns its error budget at %s× over %s and %s× over %s (%s at %s×).", head,
		burnText(f.LongBurn), analysis.WindowText(f.Long), burnText(f.ShortBurn), analysis.WindowText(f.Short), f.Severity,
		strconv.FormatFloat(f.Factor, 'f', -1, 64))
	if c := CauseText(f); c != "" {
		s += " " + c + "."
	}
	return s
}

func burnText(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func notification(base string, b store.Budget, f store.AlertFiring, ev store.AlertEvent) Notification {
	n := Notification{
		ID: notificationID(f, ev), Event: string(ev), FiringID: f.ID, Summary: summary(b, f, ev),
		Budget: budgetJSON{ID: b.ID, Name: b.Name, Service: b.Service, Endpoint: b.Endpoint, ThresholdMs: float64(b.Threshold) / 1e6, Target: b.Target},
		Rule:   RuleOf(analysis.BurnRule{Factor: f.Factor, Long: f.Long, Short: f.Short, Severity: f.Severity}),
		Burn:   burnJSON{Long: f.LongBurn, Short: f.ShortBurn}, StartedAt: f.StartedAt.UTC(),
		Links: Links(base, b, f),
	}
	if !f.ResolvedAt.IsZero() {
		t := f.ResolvedAt.UTC()
		n.ResolvedAt = &t
	}
	if f.Cause != "" {
		n.Cause = &causeJSON{Label: f.Cause, Share: f.CauseShare, P99IfFixedMs: f.FixedP99Ms, Grouped: f.CauseShare > 0}
	}
	return n
}

// slackBody is a Slack incoming-webhook payload: a text fallback and one
// section with the summary and the links.
func slackBody(n Notification) map[string]any {
	text := n.Summary + "\n<" + n.Links["outliers"] + "|Outliers> · <" + n.Links["open_incident"] + "|Open incident> · <" + n.Links["budget"] + "|Budget>"
	return map[string]any{
		"text":   n.Summary,
		"blocks": []any{map[string]any{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": text}}},
	}
}

// notifier delivers events to every target, each in its own goroutine,
// retrying with backoff; the event is marked sent once every target took
// it. Within a process an event is in flight at most once; a target that
// already took it is not sent it again.
type notifier struct {
	st  store.AlertStore
	cfg Config
	// stop ends retries when the process stops: the event stays unsent
	// and the next start sends it.
	stop context.Context
	wg   sync.WaitGroup
	mu   sync.Mutex
	busy map[string]bool
	done map[string]bool // id + target URL → delivered
}

func newNotifier(st store.AlertStore, cfg Config) *notifier {
	return &notifier{st: st, cfg: cfg, stop: context.Background(), busy: map[string]bool{}, done: map[string]bool{}}
}

func (n *notifier) wait() { n.wg.Wait() }

// send delivers an event unless it is already in flight.
func (n *notifier) send(b store.Budget, f store.AlertFiring, ev store.AlertEvent) {
	if len(n.cfg.Targets) == 0 {
		return
	}
	id := notificationID(f, ev)
	n.mu.Lock()
	if n.busy[id] {
		n.mu.Unlock()
		return
	}
	n.busy[id] = true
	n.mu.Unlock()
	body := notification(n.cfg.BaseURL, b, f, ev)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer func() {
			n.mu.Lock()
			delete(n.busy, id)
			n.mu.Unlock()
		}()
		ok := true
		for _, t := range n.cfg.Targets {
			if !n.deliver(t, body) {
				ok = false
			}
		}
		if n.stop.Err() != nil {
			return // stopping: left unsent for the next start
		}
		// Given up or delivered, the event is settled: a restart does not
		// resend what every target refused for RetryFor.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.st.MarkAlertSent(ctx, f.ID, ev, n.cfg.Now()); err != nil {
			n.cfg.Log.Warn("alerts: mark notification sent", "firing", f.ID, "event", ev, "err", err)
		}
		if !ok {
			n.cfg.Log.Error("alerts: gave up on a notification", "firing", f.ID, "event", ev, "after", n.cfg.RetryFor)
		}
	}()
}

// deliver posts body to t until it answers 2xx or RetryFor passes.
func (n *notifier) deliver(t Target, body Notification) bool {
	key := body.ID + " " + t.URL
	n.mu.Lock()
	done := n.done[key]
	n.mu.Unlock()
	if done {
		return true
	}
	var payload any = body
	if t.Format == "slack" {
		payload = slackBody(body)
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		n.cfg.Log.Error("alerts: encode notification", "err", err)
		return false
	}
	deadline := time.Now().Add(n.cfg.RetryFor)
	wait := n.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := n.post(t.URL, body.ID, raw)
		if err == nil {
			n.mu.Lock()
			n.done[key] = true
			n.mu.Unlock()
			return true
		}
		n.cfg.Log.Warn("alerts: webhook", "url", t.URL, "id", body.ID, "attempt", attempt, "err", err)
		if time.Now().Add(wait).After(deadline) {
			return false
		}
		select {
		case <-n.stop.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, n.cfg.RetryMax)
	}
}

func (n *notifier) post(u, id string, raw []byte) error {
	req, err := http.NewRequestWithContext(n.stop, http.MethodPost, u, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", id)
	req.Header.Set("User-Agent", "tailscope-alerts")
	res, err := n.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return nil
}
