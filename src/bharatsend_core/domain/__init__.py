"""The pure domain: rules with no I/O, no clock reads and no randomness.

Imports only the standard library, attrs and phonenumbers (a test walks the
imports). Time, ids and random numbers are passed in by the service layer.
"""
