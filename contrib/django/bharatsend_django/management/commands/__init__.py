"""The commands: ``bharatsend_migrate``, ``bharatsend_worker``, ``bharatsend_createtenant``,
``bharatsend_createkey``, ``bharatsend_import_dlt``, ``bharatsend_routes``, ``bharatsend_report``.
"""
