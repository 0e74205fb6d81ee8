// Package alert evaluates budgets' burn-rate alerts in the background and
// sends each firing, with its cause, to webhooks.
//
// The policy is the multiwindow, multi-burn-rate alert of the Google SRE
// workbook ("Alerting on SLOs"): a rule fires when the error budget burns
// at or above its factor over both a long window (which makes the alert
// significant) and a short one (which makes it stop soon after the burn
// does). Defaults: 14.4× over 1 h and 5 min (2% of a 30-day budget in an
// hour) and 6× over 6 h and 30 min (5% in six hours), both paging.
//
// What no other tool sends: each firing carries the top outlier group of
// the budget's endpoint at firing time ("92% of the tail: profile-svc for
// tenant=acme, p99 if fixed 219 ms"), computed by the same analysis as the
// outliers page, with links (absolute times) to that page and to an
// incident prefilled with the window.
package alert
