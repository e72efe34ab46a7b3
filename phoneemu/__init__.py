"""phoneemu: emulated IP-phone trust clients and a lab cluster to test them against."""

__version__ = "0.1.0"
__all__ = ["__version__"]
