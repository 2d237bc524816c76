"""The processes, kept thin, on top of every other package: the Temporal worker (worker.py),
the MLLP listener (listener.py), the HTTP server with the API and the pages (http_server.py)
and `carebridge up`, all of them in one process group (stack.py). Beside them, the rooms they
are built from, each importing only the ones below it: runtime/ (what every process shares),
api/ (the HTTP routes), web/ (the pages), and cli/ (the `carebridge` command, on top).
"""
