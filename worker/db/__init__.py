"""Postgres through SQLAlchemy 2: models, engine, migrations and the repository (the only SQL)."""
