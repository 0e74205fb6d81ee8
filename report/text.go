package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/tailscope/tailscope/store"
)

// SourceWord says who set a deploy marker.
func SourceWord(source string) string {
	if source == store.DeploySourceAuto {
		return "automatic marker"
	}
	return "posted marker"
}

// HumanRange writes a range for people: "2026-11-23 14:10 – 14:40 UTC".
func HumanRange(from, to time.Time) string {
	from, to = from.UTC(), to.UTC()
	layout := "2006-01-02 15:04"
	if from.Second() != 0 || to.Second() != 0 {
		layout = "2006-01-02 15:04:05"
	}
	end := to.Format(layout)
	if from.Format("2006-01-02") == to.Format("2006-01-02") {
		end = to.Format(strings.TrimPrefix(layout, "2006-01-02 "))
	}
	return from.Format(layout) + " – " + end + " UTC"
}

// HumanDuration writes a duration for people: "30 min", "2 h 15 min", "3 days".
func HumanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	default:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
}

// BudgetName is a budget's name, or its service and endpoint when it has none.
func BudgetName(b store.Budget) string {
	if strings.TrimSpace(b.Name) != "" {
		return b.Name
	}
	return b.Service + " " + b.Endpoint
}
