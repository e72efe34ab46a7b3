"""phoneemu: emulated IP-phone trust clients and a lab cluster to test them against."""

__version__ = "0.1.0"
__all__ = ["__version__", "version_text"]


def version_text() -> str:
    """``phoneemu 0.1.0 (Python 3.11.7 with OpenSSL 3.0.19 for TLS; cryptography 50.0.2 with OpenSSL
    4.0.3 for signatures and keys)``: what a result depends on (the TLS stack decides which TVS
    ciphers and versions a phone can use). ``phoneemu --version`` prints it; the JSON reports of
    ``run`` and ``fleet boot`` carry it."""
    import platform
    import ssl

    import cryptography

    from phoneemu.crypto import openssl_version_text

    return (f"phoneemu {__version__} (Python {platform.python_version()} with {ssl.OPENSSL_VERSION} for TLS; "
            f"cryptography {cryptography.__version__} with {openssl_version_text()} for "
            "signatures and keys)")
