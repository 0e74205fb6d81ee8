package components

// OperationsView is the RED table of every operation.
type OperationsView struct {
	Window  string
	Service string
	GroupBy string
	// Services offers the service filter's choices; MoreServices counts
	// those left out (then the field takes any name).
	Services     []string
	MoreServices int
	// GroupKeys suggests attribute keys to group by.
	GroupKeys []string
	Columns   []SortColumn
	Rows      []OperationRow
	Limited   bool
	Limit     int
	Accuracy  string // "1%"
	// Source says what the numbers were read from: rollups, or every
	// span of the window when grouped by an attribute.
	Source   string
	APIHref  string
	From, To string
}

// SortColumn is a sortable column header: its link sorts by it (the
// other way round when it is the current sort).
type SortColumn struct {
	Label, Href string
	Num         bool
	// Mark is "↓" or "↑" on the current sort column.
	Mark string
	// AriaSort is "descending", "ascending" or "none".
	AriaSort string
}

// OperationRow is one operation's numbers and links.
type OperationRow struct {
	Service, Name, Kind, Group string
	Count                      int64
	RatePerS, ErrorRate        float64
	P50Ms, P95Ms, P99Ms        float64
	// Href opens the operation: its latency page for entry spans, its
	// slowest traces otherwise.
	Href       string
	TracesHref string
	// Other: the spans of the service and kind whose names the rollups
	// do not keep on their own (Name is empty; OtherLimit is the bound).
	Other      bool
	OtherLimit int
}
