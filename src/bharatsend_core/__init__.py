"""bharatsend-core: India OTP and transactional SMS, embedded in your backend."""

__version__ = "0.1.0"

__all__ = ["__version__"]
