package report

import (
	"fmt"
	"time"
)

// WithBase returns the report with base (a public URL, "" for the page)
// before every link. Reports are built and stored with site-relative
// links, so one snapshot serves the page and exports under any base.
func (r Report) WithBase(base string) Report {
	if base == "" {
		return r
	}
	at := func(s *string) {
		if *s != "" {
			*s = base + *s
		}
	}
	for _, l := range []*string{&r.Links.Incident, &r.Links.ReportMarkdown, &r.Links.ReportHTML, &r.Links.ReportJSON, &r.Links.API} {
		at(l)
	}
	r.Endpoints = append([]Endpoint(nil), r.Endpoints...)
	for i := range r.Endpoints {
		l := &r.Endpoints[i].Links
		for _, s := range []*string{&l.Latency, &l.Outliers, &l.SlowTraces, &l.Impact} {
			at(s)
		}
	}
	r.Timeline = append([]Event(nil), r.Timeline...)
	for i := range r.Timeline {
		at(&r.Timeline[i].Link)
	}
	r.Deploys = append([]Deploy(nil), r.Deploys...)
	for i := range r.Deploys {
		at(&r.Deploys[i].Link)
		at(&r.Deploys[i].ComparisonLink)
	}
	r.Budgets = append([]Budget(nil), r.Budgets...)
	for i := range r.Budgets {
		at(&r.Budgets[i].Link)
	}
	r.Exemplars = append([]Exemplar(nil), r.Exemplars...)
	for i := range r.Exemplars {
		at(&r.Exemplars[i].Link)
	}
	return r
}

// exportLinks sets the export links: of the snapshot revision when the
// report is one, so a link to an export keeps naming what it showed.
func (r *Report) exportLinks() {
	p := IncidentPath(r.Incident.ID)
	q := ""
	if r.Revision > 0 {
		q = fmt.Sprintf("?revision=%d", r.Revision)
	}
	r.Links.ReportMarkdown, r.Links.ReportHTML, r.Links.ReportJSON = p+"/report.md"+q, p+"/report.html"+q, p+"/report.json"+q
}

// AsRevision marks a stored report as snapshot revision rev, finalized at
// at: its export links name the revision. Call it before WithBase.
func (r Report) AsRevision(rev int, at time.Time) Report {
	r.Revision = rev
	at = at.UTC()
	r.FinalizedAt = &at
	r.exportLinks()
	return r
}
