"""Generator of the chart's Grafana dashboards (not part of the operator)."""
