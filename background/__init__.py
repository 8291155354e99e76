"""Background work: jobs and their rows, results keyed by URL, asynctask and the audit trail."""
