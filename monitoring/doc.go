// Package monitoring holds tidstorage's monitoring mixin: Prometheus
// alerting rules (alerts.yaml, with a runbook per alert in docs/admin.md),
// recording rules (rules.yaml), a Grafana dashboard (dashboard.json) and
// rule unit tests in promtool's format (tests/). It is a module of its own
// so that the Prometheus libraries its tests use (rule and PromQL parsers,
// the rule evaluation of promtool) stay out of the tidstorage binary's
// go.mod; scripts/test.sh runs its tests. See docs/admin.md, "Monitoring".
package monitoring
