"""HTTP surface: webhooks, reports, /ask, health and metrics."""
