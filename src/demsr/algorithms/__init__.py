"""Processing algorithms: thin adapters from Processing parameters to core calls."""
