"""One module per ``phoneemu`` command; each exposes ``register(subparsers)``."""
