# asmfield server image: `docker build -t asmfield .` then
# `docker run -p 8000:8000 -v asmfield-data:/data asmfield` (SQLite + media + secret key in /data),
# or pass ASMFIELD_DATABASE_URL / ASMFIELD_SECRET_KEY / ASMFIELD_MEDIA_DIR for PostgreSQL deployments.

# -- front-end libraries from the npm registry (Leaflet, Swagger UI; served by us: field users are offline) --
FROM node:20-bookworm-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts --silent

# -- the server --------------------------------------------------------------------------
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ASMFIELD_DATA_DIR=/data
WORKDIR /opt/asmfield

# Dependencies first (cached while only the code changes); constraints.txt pins every version.
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir -p app && touch app/__init__.py \
 && pip install -c constraints.txt . \
 && pip uninstall -y asmfield && rm -rf app

# The kernel and every capability package (.dockerignore leaves out tests, bench, docs and scripts),
# so a new capability needs no line here.
COPY . ./
COPY --from=assets /src/node_modules ./node_modules
# Editable-style install from the source tree: migrations and bundled files are read from here.
RUN pip install --no-deps -c constraints.txt -e . \
 && python -m app.assets copy \
 && rm -rf node_modules \
 && useradd --system --home-dir /data --shell /usr/sbin/nologin asmfield \
 && mkdir -p /data && chown asmfield /data

USER asmfield
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
# `init` creates or upgrades the schema (and the secret key in /data) before every start; data is kept.
CMD ["sh", "-c", "asmfield init && exec asmfield serve --host 0.0.0.0 --port 8000"]
