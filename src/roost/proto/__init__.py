"""Protocol cores without I/O: bytes in, typed events and bytes out.

Nothing under this package imports asyncio, socket, sqlite3 or nats, so every
codec and state machine here can be fed byte literals and fuzzed.
"""
