"""Django integration for bharatsend-core (install with ``bharatsend-core[django]``).

The app mounts the framework-neutral HTTP handlers of ``bharatsend_core.http``
and configures the core from the ``BHARATSEND`` settings dict.
"""

__version__ = "0.1.0"
