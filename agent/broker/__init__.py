"""The reference work broker: an HTTP queue of work items with leases, stored in SQLite."""
