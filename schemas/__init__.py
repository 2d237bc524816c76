"""The vocabulary: pydantic v2 models shared by every part of carebridge, and the pure
functions over them that more than one layer needs (opaque keys, the protocol library, the
30-day TCM / TRC / readmission arithmetic). The bottom layer: it imports nothing else of
carebridge.

No I/O, except that `protocol_library.py` reads the protocol folder it is given, and
nothing heavy to import: the Temporal workflow sandbox passes this package through.
"""
