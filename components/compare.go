package components

// TraceCompareView is the trace comparison page: two traces aligned span by
// span.
type TraceCompareView struct {
	A, B    CompareSide
	Summary string
	Facts   []Fact
	Rows    []CompareRow
	// SwapHref compares the other way round; APIHref is the JSON.
	SwapHref, APIHref string
	// ShapeHref opens the cohort comparison of the endpoint around A.
	ShapeHref string
}

// CompareSide is one of the two traces.
type CompareSide struct {
	Label, TraceID, Href, Root string
	DurationMs                 float64
	Spans                      int
}

// CompareRow is one aligned span position.
type CompareRow struct {
	Indent  int
	Service string
	Name    string
	Ordinal int
	// Only is "A" or "B" when the span is in one trace only.
	Only         string
	Async        bool
	Culprit      bool
	AHref, BHref string
	AMs, BMs     float64 // durations; -1 when absent
	DeltaMs      float64
	CritDeltaMs  float64
	Error        bool
}

// ShapeView is the slow-versus-typical shape page of an endpoint.
type ShapeView struct {
	Picker  EndpointPicker
	Summary string
	Facts   []Fact
	Rows    []ShapeRow
	// Percentile is the slow cohort's definition, kept by the form.
	Percentile              string
	SlowHrefs, TypicalHrefs []KV // example traces: label, href
	APIHref, OutliersHref   string
	Empty                   bool
}

// ShapeRow is one path of the merged tree.
type ShapeRow struct {
	Indent                    int
	Service, Name             string
	Async, Culprit            bool
	SlowPresence, TypPresence float64
	SlowCalls, TypCalls       float64
	SlowMs, TypMs             float64
	SlowCritMs, TypCritMs     float64
	CritDeltaMs               float64
	// SearchHref lists the endpoint's slow traces that contain the span.
	SearchHref string
}

// deltaClass colours a difference: slower (red), faster (blue) or none.
func deltaClass(ms float64) string {
	switch {
	case ms >= 1:
		return "delta slower"
	case ms <= -1:
		return "delta faster"
	}
	return "delta"
}

// signedMsText writes a difference with its sign.
func signedMsText(v float64) string {
	if v < 0 {
		return "−" + ms(-v)
	}
	if v == 0 {
		return "0 ms"
	}
	return "+" + ms(v)
}

// msOrDash writes a duration, or an en dash for an absent span.
func msOrDash(v float64) string {
	if v < 0 {
		return "–"
	}
	return ms(v)
}

func callsText(v float64) string { return f1(v) }
