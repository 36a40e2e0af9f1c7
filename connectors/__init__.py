"""Store connectors: one module per store, a registry, and the protocol they share."""
