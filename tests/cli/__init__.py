"""The `tenantry` command line: help, one-line errors, imports kept light, the runbook's
commands."""
