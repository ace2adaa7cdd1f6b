"""The Alembic wrapper: two version tracks (shared registry, tenant schemas) and their runners."""
