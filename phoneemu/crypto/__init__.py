"""The only package that imports ``cryptography.hazmat`` (design §2)."""
