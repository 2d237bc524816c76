"""carebridge tests: unit/, workflow/ (time-skipping + replay), integration/ (real servers)."""
