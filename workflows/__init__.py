"""Deterministic orchestration only: the transition workflow and its search-attribute keys.

No I/O, no wall clock, no randomness here; every side effect is an activity.
"""
