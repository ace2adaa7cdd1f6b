"""What a deployment and a newcomer meet: compose, deploy files, the embedded server, `make run`,
the docs, Citus."""
