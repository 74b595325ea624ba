"""The worker: arq jobs, the queue they share with the API, storms, job counters."""
