"""Alembic environment: runs against the engine handed over in ``config.attributes``.

``scripts/new_migration.py PACKAGE MESSAGE`` autogenerates a revision for one package's
branch; ``config.attributes["only_package"]`` limits the comparison to that package's tables.
"""

from alembic import context
from sqlmodel import SQLModel

from app.db import import_all_models, table_packages

import_all_models()
config = context.config
engine = config.attributes.get("engine")
only_package = config.attributes.get("only_package")
if engine is None:  # plain `alembic` command line: build from settings
    from app.db import make_engine
    from app.settings import Settings

    engine = make_engine(Settings())

owners = table_packages()


def include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001, ANN201
    if only_package is None:
        return True
    table = obj if type_ == "table" else getattr(obj, "table", None)
    table_name = name if type_ == "table" else (table.name if table is not None else None)
    if table_name == "alembic_version":
        return False
    return owners.get(table_name) == only_package


with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
