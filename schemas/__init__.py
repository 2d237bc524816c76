"""The vocabulary: pydantic v2 models shared by every part of carebridge.

No I/O and nothing heavy to import: the Temporal workflow sandbox passes this package through.
"""
