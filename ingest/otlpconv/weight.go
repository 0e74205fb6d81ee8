package otlpconv

import (
	"math"
	"strconv"
	"strings"
)

// A span's weight is its adjusted count: how many spans of the unsampled
// stream it stands for (DESIGN.md "Span row"). Sources, first that applies:
//
//  1. OpenTelemetry consistent-probability sampling: the threshold th in
//     the ot member of the span's W3C tracestate
//     (https://opentelemetry.io/docs/specs/otel/trace/tracestate-probability-sampling/).
//     th is 1 to 14 lowercase hex digits, padded on the right with zeros
//     to 14 (56 bits): a rejection threshold T, so the span was kept with
//     probability (2^56 − T)/2^56 and stands for 2^56/(2^56 − T) spans.
//     An invalid th is ignored, as the spec asks.
//  2. A numeric SampleRate attribute of the span, else of its resource
//     (Honeycomb's convention, kept by its beelines and Refinery): kept 1
//     in N, so weight N. Values ≤ 1, not finite, or not numbers give 1.
//
// sampling.priority (OpenTracing/Datadog) says whether to keep a trace,
// not at what rate, so it gives no weight. Weights are capped at 2^56,
// the largest adjusted count th can express, so that a weighted sum of
// counts cannot overflow an int64 before 2^7 spans of that weight.
const (
	keySampleRate = "SampleRate"

	thDigits  = 14 // 56 bits
	maxWeight = float64(1 << 56)
)

// traceStateWeight returns the adjusted count of the th threshold in
// tracestate ts, and whether ts holds a valid one.
func traceStateWeight(ts string) (float64, bool) {
	ot, ok := traceStateMember(ts, "ot")
	if !ok {
		return 0, false
	}
	for sub := range strings.SplitSeq(ot, ";") {
		if v, ok := strings.CutPrefix(sub, "th:"); ok {
			return thresholdWeight(v)
		}
	}
	return 0, false
}

// traceStateMember returns the value of the list member with key k of a
// W3C tracestate: comma-separated key=value members, optional spaces and
// tabs around each. Keys are unique, so the first match is the one.
func traceStateMember(ts, k string) (string, bool) {
	for m := range strings.SplitSeq(ts, ",") {
		m = strings.Trim(m, " \t")
		if key, v, ok := strings.Cut(m, "="); ok && key == k {
			return v, true
		}
	}
	return "", false
}

// thresholdWeight reads a th value: 1 to 14 lowercase hex digits.
func thresholdWeight(v string) (float64, bool) {
	if len(v) == 0 || len(v) > thDigits {
		return 0, false
	}
	var t uint64
	for i := 0; i < len(v); i++ {
		c := v[i]
		var d uint64
		switch {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case 'a' <= c && c <= 'f':
			d = uint64(c-'a') + 10
		default:
			return 0, false
		}
		t = t<<4 | d
	}
	t <<= 4 * (thDigits - len(v))
	// 2^56 − T ≥ 1, since T < 2^56.
	return maxWeight / float64(uint64(1<<56)-t), true
}

// sampleRateWeight reads a SampleRate attribute value; 0 when it gives
// no weight.
func sampleRateWeight(v attrValue) float64 {
	var f float64
	switch v.typ {
	case valInt:
		f = float64(v.intVal())
	case valDouble:
		f = v.doubleVal()
	case valStr:
		p, err := strconv.ParseFloat(strings.TrimSpace(v.str), 64)
		if err != nil {
			return 0
		}
		f = p
	default:
		return 0
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f <= 1 {
		return 0
	}
	return min(f, maxWeight)
}

// weight is the span's adjusted count from its tracestate and the
// SampleRate seen on the span (spanRate) and its resource (resRate), 0
// when absent.
func weight(traceState string, spanRate, resRate float64) float64 {
	if traceState != "" {
		if w, ok := traceStateWeight(traceState); ok {
			return w
		}
	}
	switch {
	case spanRate > 0:
		return spanRate
	case resRate > 0:
		return resRate
	}
	return 1
}
