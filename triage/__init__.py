"""The triage worker: settings, jobs, checks, ranking, analysis, the /ask agent, the CLI."""
