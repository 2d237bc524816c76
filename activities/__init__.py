"""Every side effect of a transition, each idempotent: due-time planning, projection writes."""
