"""The only package that imports ``cryptography.hazmat`` (design §2)."""

__all__ = ["openssl_version_text"]


def openssl_version_text() -> str:
    """The OpenSSL build cryptography signs, verifies and makes keys with (``OpenSSL 4.0.3 ...``); not
    necessarily Python's ``ssl.OPENSSL_VERSION``, which runs TLS."""
    from cryptography.hazmat.backends.openssl.backend import backend

    return str(backend.openssl_version_text())
