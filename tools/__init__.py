"""Async clients for the data sources (Prometheus, Loki, Grafana, Proxmox VE, PBS) and the runbook index."""
