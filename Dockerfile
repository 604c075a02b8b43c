# promobulk: one image for the API, the workers, beat, Flower, the migration and the simulator.
# Slim, non-root, no development tools; configuration comes from the environment only.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY worker ./worker
# The package and Flower (Celery's monitoring UI); no development tools.
RUN /opt/venv/bin/pip install '.[flower]'

FROM python:3.11-slim
RUN useradd --system --create-home --uid 10001 promobulk
COPY --from=build /opt/venv /opt/venv
# `promobulk db upgrade` reads the migrations from here.
COPY alembic.ini /app/alembic.ini
COPY migrations /app/migrations
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROMOBULK_ALEMBIC_INI=/app/alembic.ini
WORKDIR /app
USER promobulk
EXPOSE 8000 9808 5555 8080
CMD ["promobulk", "--help"]
