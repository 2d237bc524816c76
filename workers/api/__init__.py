"""The HTTP API's routes, one module a resource (adt, messages, notifications, transitions,
care_plan, reports, protocols, audit, codec_server, health), and what they share: who the
caller is and what their role admits (auth.py), the audit trail of every call (audit_trail.py,
audit.py), the services dependency and problem bodies (common.py), the body limit (limits.py).
workers/http_server.py assembles them, with the web pages, into one app.
"""
