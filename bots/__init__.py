"""Channel adapters, the pipeline every message walks, dialogue, the app and the CLI."""
