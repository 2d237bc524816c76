"""`carebridge simulate`: a generated ADT feed and simulated staff run through the real
worker, intake and PostgreSQL on Temporal's time-skipping test server, weeks in minutes."""
