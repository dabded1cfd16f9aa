"""Device protocol listeners: thin asyncio glue between sockets and the hub."""
