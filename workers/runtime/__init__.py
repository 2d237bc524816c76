"""What every carebridge process shares: its settings (settings.py), structured logging with
PHI redaction (logs.py), tracing (tracing.py), the Temporal client with its payload codec,
search attributes and schedules (temporal.py, codec.py, schedules.py), the long-lived
services a process holds (services.py), and the embedded Temporal dev server and PostgreSQL
that stand in when none is configured (embedded.py). It imports no other room of workers/.
"""
