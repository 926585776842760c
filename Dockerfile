# syntax=docker/dockerfile:1
# Stage 1: build a virtualenv. Dependencies are installed before the source is copied,
# so editing code does not invalidate the (slow) dependency layer.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only the metadata first: a stub package lets pip resolve and install dependencies.
COPY pyproject.toml README.md ./
RUN mkdir -p src/authly && touch src/authly/__init__.py \
    && pip install '.[redis]' && pip uninstall -y authly
# Then the source (changes often).
COPY src ./src
RUN pip install --no-deps '.[redis]'

# Stage 2: slim runtime without build tools; non-root; tini reaps and forwards signals.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/authly --create-home authly
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    AUTHLY_DATABASE_URL=sqlite:////var/lib/authly/data/authly.db
USER authly
WORKDIR /var/lib/authly
EXPOSE 8000
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["authly", "serve", "--host", "0.0.0.0"]
