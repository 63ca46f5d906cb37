# wx-push as a container: gunicorn wsgi:app on port 8000, as an unprivileged user.
#   docker build -t wx-push .
#   docker run --env-file .env -p 127.0.0.1:8000:8000 wx-push
# compose.yaml runs it with nginx in front and Redis beside it (deploy/README.md, "Containers").
#
# One stage: every requirement installs from a wheel, so a build stage would leave behind
# nothing but pip's cache, which PIP_NO_CACHE_DIR already keeps out.
FROM python:3.11-slim

# GUNICORN_BIND: gunicorn.conf.py binds loopback by default, but in a container nginx (or
# docker run -p) connects from outside it.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GUNICORN_BIND=0.0.0.0:8000

RUN useradd --system --user-group --home-dir /app --no-create-home wxpush
WORKDIR /app

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY app/ app/
COPY examples/ examples/
# config.py, wsgi.py, gunicorn.conf.py, and your handler module (WX_HANDLERS) if it sits
# beside them; a handler package needs a COPY line of its own. .env stays out of the image
# (.dockerignore): settings come from the environment (docker run --env-file, compose's env_file).
COPY *.py ./

# The SQLite ledger of the default WX_STORE_URL (sqlite:///instance/wx-push.db).
RUN mkdir instance && chown wxpush:wxpush instance
VOLUME /app/instance

USER wxpush
EXPOSE 8000

# /healthz answers 200, or 503 while the shared store is unreachable; urlopen raises on
# both a 503 and no answer. python, because the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# --worker-tmp-dir: gunicorn's worker heartbeat files on tmpfs, not the overlay filesystem,
# where a slow write can make the master kill a healthy worker.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "--worker-tmp-dir", "/dev/shm", "wsgi:app"]
