# Keeper's image: one image for every service of docker-compose.yml (web, worker, beat, migrate).
#   docker build -t keeper .
#   docker run -e KEEPER_SECRET_KEY=... -e DATABASE_URL=postgres://... -e REDIS_URL=redis://... -p 8000:8000 keeper
# Without a command it serves the API with gunicorn (keeper/gunicorn.conf.py), WEB_CONCURRENCY workers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Every dependency ships as a wheel (psycopg[binary] included): no compiler, no -dev packages.
COPY requirements.txt /app/requirements.txt
RUN pip install -r /app/requirements.txt

# Files stay root's and read-only to the service: it runs as `keeper`, whose home holds only
# caches (sparecores-data's download, gunicorn's control socket).
RUN useradd --create-home --home-dir /home/keeper --uid 10001 --user-group --shell /usr/sbin/nologin keeper
WORKDIR /app
COPY . /app

# Static files (admin, Swagger UI, ReDoc) collected once, here, and served by WhiteNoise from this folder.
# collectstatic needs settings but no database; the throwaway secret key keeps settings from
# writing a generated one (.keeper-secret-key) into the image.
ENV KEEPER_STATIC_ROOT=/app/staticfiles
RUN KEEPER_SECRET_KEY=collectstatic-at-build-time-only python manage.py collectstatic --no-input -v 0

USER keeper
EXPOSE 8000
# gunicorn workers per container. gunicorn reads WEB_CONCURRENCY only as its default, which
# keeper/gunicorn.conf.py's `workers = 2` overrides: hence --workers below.
# JSON request lines even when `docker run -t` gives the process a terminal.
ENV WEB_CONCURRENCY=4 \
    KEEPER_LOG_FORMAT=json

# 200 once a catalog is loaded; 503 before the first sync (urlopen raises: exit status 1).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthcheck', timeout=4)"]

CMD ["sh", "-c", "exec gunicorn -c keeper/gunicorn.conf.py --workers \"$WEB_CONCURRENCY\" keeper.wsgi"]
