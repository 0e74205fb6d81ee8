package web

import (
	"context"
	"math"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tailscope/tailscope/internal/browsertest"
	"github.com/tailscope/tailscope/internal/testenv"
)

// axisJS reads the waterfall's time axis: the times its five labels show,
// in milliseconds from the trace's start.
const axisJS = `[...document.querySelectorAll('[data-axis] span')].map(s => {
	const [v, u] = s.textContent.split(" ");
	return Number(v) * ({"µs": 1e-3, "ms": 1, "s": 1e3, "min": 6e4})[u];
})`

// wfDragJS drags the mouse across the element sel from fraction x0 to x1
// of its width, at fraction y of its height (the moves go to the window,
// as a real drag's do once it leaves the element).
func wfDragJS(sel string, x0, x1, y float64) string {
	return `(() => {
		const el = document.querySelector('` + sel + `');
		const r = el.getBoundingClientRect();
		const at = (f) => r.left + f * r.width, top = r.top + ` + ftoa(y) + ` * r.height;
		const ev = (type, x, target) => target.dispatchEvent(new MouseEvent(type, {clientX: x, clientY: top, button: 0, bubbles: true}));
		ev("mousedown", at(` + ftoa(x0) + `), el);
		ev("mousemove", at((` + ftoa(x0) + ` + ` + ftoa(x1) + `) / 2), window);
		ev("mousemove", at(` + ftoa(x1) + `), window);
		ev("mouseup", at(` + ftoa(x1) + `), window);
	})()`
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// TestBrowserWaterfallZoom: dragging across the time axis zooms the
// waterfall to that part of the trace, Reset zoom returns to the whole
// trace, dragging across the minimap outside its window zooms too,
// dragging the window moves the zoomed range, and a click on the minimap
// scrolls to the rows there.
func TestBrowserWaterfallZoom(t *testing.T) {
	testenv.Chromium(t)
	h, db := newWritableServer(t)
	spans := wideTrace(2_000) // 3 s long: root 0–3 s, shards 0–2 s
	if err := db.WriteSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	b := browsertest.New(t)
	b.Do(chromedp.Navigate(ts.URL+"/traces/"+spans[0].TraceID.String()), chromedp.WaitVisible(chromedp.CSS(`[data-waterfall][data-ready]`)))

	axis := func(t *testing.T, wantFrom, wantTo float64) {
		t.Helper()
		got := browsertest.Get(b, chromedp.Evaluate[[]float64](axisJS))
		// Labels carry two or three significant digits.
		if len(got) != 5 || math.Abs(got[0]-wantFrom) > 0.02*3000 || math.Abs(got[4]-wantTo) > 0.02*3000 {
			t.Errorf("time axis %v ms, want %.0f … %.0f ms", got, wantFrom, wantTo)
		}
	}
	resetDisabled := func() bool {
		return browsertest.Get(b, chromedp.Evaluate[bool](`document.querySelector('[data-zoom-reset]').disabled`))
	}
	axis(t, 0, 3000)
	if !resetDisabled() {
		t.Error("Reset zoom is enabled before any zoom")
	}

	t.Run("drag across the axis", func(t *testing.T) {
		b.Do(chromedp.Evaluate[chromedp.Void](wfDragJS("[data-axis]", 0.25, 0.5, 0.5)))
		axis(t, 750, 1500)
		if resetDisabled() {
			t.Error("Reset zoom stays disabled while zoomed")
		}
		b.Do(chromedp.Click(chromedp.CSS(`[data-zoom-reset]`)))
		axis(t, 0, 3000)
	})

	t.Run("minimap drag zooms, dragging its window pans", func(t *testing.T) {
		// The window covers the whole time range and the first screen of
		// rows; the bottom of the minimap is outside it.
		b.Do(chromedp.Evaluate[chromedp.Void](wfDragJS("[data-minimap]", 0.5, 0.75, 0.95)))
		axis(t, 1500, 2250)
		// Grab the window (top rows, inside the zoomed range) and move it
		// a tenth of the trace earlier.
		b.Do(chromedp.Evaluate[chromedp.Void](wfDragJS("[data-minimap]", 0.6, 0.5, 0.02)))
		axis(t, 1200, 1950)
		b.Do(chromedp.Click(chromedp.CSS(`[data-zoom-reset]`)))
	})

	t.Run("a click on the minimap scrolls to its rows", func(t *testing.T) {
		if top := browsertest.Get(b, chromedp.Evaluate[float64](`document.querySelector('.wf-rows').scrollTop`)); top != 0 {
			t.Fatalf("rows scrolled to %v before the click", top)
		}
		b.Do(chromedp.Evaluate[chromedp.Void](wfDragJS("[data-minimap]", 0.5, 0.5, 0.9)))
		top := browsertest.Get(b, chromedp.Evaluate[float64](`document.querySelector('.wf-rows').scrollTop`))
		rows := browsertest.Get(b, chromedp.Evaluate[float64](`document.querySelector('.wf-rows').scrollHeight`))
		if top < 0.6*rows {
			t.Errorf("after a click at 90%% of the minimap the rows are scrolled to %.0f of %.0f px", top, rows)
		}
	})
}
