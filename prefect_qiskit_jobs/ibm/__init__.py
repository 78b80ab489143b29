"""The one I/O layer to IBM Quantum Platform: the gateway, JSON mapping, listing, tags and backends."""
