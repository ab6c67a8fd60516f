"""No Django models: the core keeps its own tables (migrated after ``manage.py migrate``).

The module exists so Django sends this app the ``post_migrate`` signal.
"""
