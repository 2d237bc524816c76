"""Deterministic orchestration only: the transition workflow (transition.py, composed of its
transition_*.py parts), the scheduled sweep and digest, and the search-attribute keys.

No I/O, no wall clock, no randomness here; every side effect is an activity, named by its
method (imported through the sandbox's passthrough) so mypy checks each call.
"""
