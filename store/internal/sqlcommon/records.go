package sqlcommon

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tailscope/tailscope/store"
)

// DeployColumns lists the deploys columns ScanDeploy reads.
const DeployColumns = "id, service, version, at_ns, note, source"

// ScanDeploy reads one deploy row.
func ScanDeploy(sc Scanner) (store.Deploy, error) {
	var (
		d  store.Deploy
		at int64
	)
	if err := sc.Scan(&d.ID, &d.Service, &d.Version, &at, &d.Note, &d.Source); err != nil {
		return d, err
	}
	d.At = Time(at)
	return d, nil
}

// PrepareDeploy validates d and fills defaults: Source api, At now.
func PrepareDeploy(d store.Deploy, now time.Time) (store.Deploy, error) {
	if d.Service == "" {
		return d, invalid("deploy: service is required")
	}
	if d.Version == "" {
		return d, invalid("deploy: version is required")
	}
	switch d.Source {
	case "":
		d.Source = store.DeploySourceAPI
	case store.DeploySourceAPI, store.DeploySourceAuto:
	default:
		return d, invalid("deploy: unknown source %q", d.Source)
	}
	if d.At.IsZero() {
		d.At = now
	}
	d.Service, d.Version, d.Note = Clean(d.Service), Clean(d.Version), Clean(d.Note)
	return d, nil
}

// BudgetColumns lists the budgets columns ScanBudget reads.
const BudgetColumns = "id, name, service, endpoint, threshold_ns, target, period_ns, hop_measure, hops, created_ns, updated_ns"

// ScanBudget reads one budget row.
func ScanBudget(sc Scanner) (store.Budget, error) {
	var (
		b                 store.Budget
		threshold, period int64
		measure           string
		hops              []byte
		created, updated  int64
	)
	if err := sc.Scan(&b.ID, &b.Name, &b.Service, &b.Endpoint, &threshold, &b.Target, &period,
		&measure, &hops, &created, &updated); err != nil {
		return b, err
	}
	b.Threshold, b.Period, b.HopMeasure = time.Duration(threshold), time.Duration(period), store.HopMeasure(measure)
	b.CreatedAt, b.UpdatedAt = Time(created), Time(updated)
	if err := json.Unmarshal(hops, &b.Hops); err != nil {
		return b, fmt.Errorf("decode budget hops: %w", err)
	}
	if len(b.Hops) == 0 {
		b.Hops = nil
	}
	return b, nil
}

// EncodeHops encodes a budget's hop table ("[]" when empty).
func EncodeHops(h []store.HopBudget) ([]byte, error) {
	if len(h) == 0 {
		return []byte("[]"), nil
	}
	clean := make([]store.HopBudget, len(h))
	for i, x := range h {
		clean[i] = store.HopBudget{Service: Clean(x.Service), Dependency: Clean(x.Dependency), Allocation: x.Allocation}
	}
	b, err := json.Marshal(clean)
	if err != nil {
		return nil, fmt.Errorf("encode budget hops: %w", err)
	}
	return b, nil
}

// CleanBudget sanitises a budget's text fields and writes the default
// hop measure out, so a stored budget always says which it uses.
func CleanBudget(b store.Budget) store.Budget {
	b.Name, b.Service, b.Endpoint = Clean(b.Name), Clean(b.Service), Clean(b.Endpoint)
	if b.HopMeasure == "" {
		b.HopMeasure = store.HopWholeCall
	}
	return b
}

// IncidentColumns lists the incidents columns ScanIncident reads.
const IncidentColumns = "id, title, from_ns, to_ns, services, notes, pinned_traces, created_ns, updated_ns"

// ScanIncident reads one incident row.
func ScanIncident(sc Scanner) (store.Incident, error) {
	var (
		in                         store.Incident
		from, to, created, updated int64
		services, pinned           []byte
	)
	if err := sc.Scan(&in.ID, &in.Title, &from, &to, &services, &in.Notes, &pinned, &created, &updated); err != nil {
		return in, err
	}
	in.From, in.To = Time(from), Time(to)
	in.CreatedAt, in.UpdatedAt = Time(created), Time(updated)
	if err := json.Unmarshal(services, &in.Services); err != nil {
		return in, fmt.Errorf("decode incident services: %w", err)
	}
	if len(in.Services) == 0 {
		in.Services = nil
	}
	if err := json.Unmarshal(pinned, &in.PinnedTraces); err != nil {
		return in, fmt.Errorf("decode incident pinned traces: %w", err)
	}
	if len(in.PinnedTraces) == 0 {
		in.PinnedTraces = nil
	}
	return in, nil
}

// IncidentJSON validates an incident and encodes its list columns.
func IncidentJSON(in store.Incident) (clean store.Incident, services, pinned []byte, err error) {
	if err := CheckRange(in.From, in.To); err != nil {
		return in, nil, nil, err
	}
	in.Title, in.Notes = Clean(in.Title), Clean(in.Notes)
	svcs := make([]string, len(in.Services))
	for i, s := range in.Services {
		svcs[i] = Clean(s)
	}
	in.Services = svcs
	if services, err = json.Marshal(svcs); err != nil {
		return in, nil, nil, fmt.Errorf("encode incident services: %w", err)
	}
	pins := in.PinnedTraces
	if pins == nil {
		pins = []store.TraceID{}
	}
	if pinned, err = json.Marshal(pins); err != nil {
		return in, nil, nil, fmt.Errorf("encode incident pinned traces: %w", err)
	}
	if len(in.Services) == 0 {
		in.Services = nil
	}
	return in, services, pinned, nil
}
