"""A tenant's life: onboarding, suspend/resume/drop/restore/purge, export and import, naming, API
keys, and the roles everything runs as."""
