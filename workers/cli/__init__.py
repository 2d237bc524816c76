"""The `carebridge` command line (typer + rich). main.py is the console entry point
(`carebridge = "workers.cli.main:app"`): the process commands (up, migrate, worker,
listener, api) and every command group, each a module (transitions, ingest, roster,
security, deployment, example), registered on the one typer app of app.py. views.py holds
their rich renderings; audit_trail.py the audit rows of what a command reads and changes.
"""
