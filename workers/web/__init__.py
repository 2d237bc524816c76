"""The web pages: the worklist, a transition, its printable care plan, the dashboard and the
login (pages.py), server-rendered from templates/ (Jinja2, autoescaped) with the dashboard's
SVG charts (charts.py). They sign in and read through the API's own auth and services."""
