"""The Postgres store: connection pool, ordered SQL migrations, inbox and projection queries."""
