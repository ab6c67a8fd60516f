"""Ports: the ``typing.Protocol`` interfaces the service layer needs (storage, queue,
carrier, webhook transport, clock, ids). They import only the domain."""
