"""The database backend: django-tenants' PostgreSQL backend, with bulk inserts as one multi-row VALUES.

Django 5.2 inserts several rows as `SELECT * FROM UNNEST(%s::type[], ...)`, which saves PostgreSQL planning time
with server-side binding. We bind on the client (Django's default with psycopg 3), where every array is quoted
element by element in Python: a webhook batch spent a tenth of its time there (docs/performance-notes.md).
"""
