"""HL7 v2 ingest: ER7 parsing and mapping to schemas, ACK building, and the intake that commits
a message to the inbox and hands it to Temporal before it is acknowledged."""
