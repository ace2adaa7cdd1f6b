"""`tenantry migrate` and plain Alembic: plans, runs, the CLI, stamps, extra revisions, SQL
splitting."""
