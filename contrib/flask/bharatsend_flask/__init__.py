"""Flask integration for bharatsend-core (install with ``bharatsend-core[flask]``).

The blueprint, the extension object and the ``flask bharatsend`` command group
are built on the framework-neutral HTTP handlers in ``bharatsend_core.http``.
"""

__version__ = "0.1.0"
