"""The processes, kept thin: Temporal worker, ADT listener (MLLP), HTTP API, CLI and the
dev-stack launcher, plus the settings and logging they share."""
