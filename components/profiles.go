package components

// ProfileView is a page showing one flame graph: a span's CPU, a service's
// profile over a time range, or an outlier group's diff against baseline.
type ProfileView struct {
	Title, Subtitle string
	Links           []SpanLink
	// Picker lets the profile explorer choose the service and type.
	Picker *ProfilePicker
	Graph  FlameGraph
	Note   string
}

// ProfilePicker chooses what the profile explorer shows.
type ProfilePicker struct {
	Service, Type string
	From, To      string
	Services      []string
	Types         []string
}
