"""The data node: an HTTP service over one durable Store (see docs/protocol.md, "Data node")."""
