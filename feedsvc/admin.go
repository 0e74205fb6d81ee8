package feedsvc

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
)

// GET /admin/faults: the active faults, defaults filled in.
func (c *Cluster) handleGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, faultsView{Faults: c.Faults(), Active: nonNil(c.Faults().Active())})
}

type faultsView struct {
	Faults
	Active []string `json:"active"`
}

// POST /admin/faults: replace the active faults with the JSON body
// ({} turns everything off). Unknown fields are rejected so a typo is not a
// silently ignored switch.
func (c *Cluster) handlePostFaults(w http.ResponseWriter, r *http.Request) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return badRequest("read body: %v", err)
	}
	var f Faults
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return badRequest("faults: %v", err)
	}
	if err := f.validate(c.cfg.Tenants); err != nil {
		return badRequest("%v", err)
	}
	if err := c.SetFaults(r.Context(), f); err != nil {
		return err
	}
	c.handleGetFaults(w, r)
	return nil
}

// GET /admin/version
func (c *Cluster) handleGetVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": c.Version(), "mode": string(c.Mode())})
}

// POST /admin/version {"version":"v2"}: a deploy.
func (c *Cluster) handlePostVersion(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Version string `json:"version"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if !slices.Contains(Versions(), body.Version) {
		return badRequest("unknown version %q (want one of %v)", body.Version, Versions())
	}
	if err := c.SetVersion(r.Context(), body.Version); err != nil {
		return err
	}
	c.handleGetVersion(w, r)
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
