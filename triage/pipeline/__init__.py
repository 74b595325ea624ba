"""The triage pipeline: plan, the checks, gather, rank, chains, runbook matches."""
