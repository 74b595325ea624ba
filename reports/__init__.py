"""The report as data, its templates, the report store and delivery to Grafana."""
