"""The auditors' archive: every process's log events in sealed, signed, hash-chained segments in an Object
Lock bucket (``jatra worker archive``), and the auditors' commands over it (``jatra audit ...``).

The files, one job each: :mod:`.layout` (object keys), :mod:`.segments` (the bytes of a segment),
:mod:`.signing` (the Ed25519 key), :mod:`.manifest` (canonical, signed manifests), :mod:`.store` (the bucket
and Object Lock), :mod:`.journal` (the write-ahead record of the segment being sealed), :mod:`.archiver` (the
sealing loop and its crash recovery), :mod:`.worker` (the worker iteration and metrics), :mod:`.verify`,
:mod:`.search` (search and export) and :mod:`.commands` (the click group).
"""
