# One image for the web server and the worker.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_VAR_DIR=/app/var

# libgl/glib: runtime libraries OpenCV's face detector links against.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libglib2.0-0 curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files are collected as production serves them (DJANGO_DEBUG=false): only then is the
# manifest written that whitenoise's CompressedManifestStaticFilesStorage needs at run time
# (collected with debug on, every page was a 500). The key is a throwaway for this one build
# step; production still refuses to start without its own DJANGO_SECRET_KEY.
RUN useradd --create-home --uid 1000 app \
    && mkdir -p /app/var/media \
    && DJANGO_DEBUG=false DJANGO_SECRET_KEY=collectstatic-build-only-not-a-secret python manage.py collectstatic --noinput -v 0 \
    && chown -R app:app /app/var
USER app

EXPOSE 8000
CMD ["gunicorn", "deepfake_site.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "8", "--access-logfile", "-"]
