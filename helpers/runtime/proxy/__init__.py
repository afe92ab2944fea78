"""The data plane: an asyncio HTTP/1.1 reverse proxy serving one route table.

See ``helpers.runtime``'s map; ``proxying.GatewayProxy`` is the entry point.
"""
