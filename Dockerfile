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
RUN useradd --create-home --uid 1000 app \
    && mkdir -p /app/var/media \
    && DJANGO_DEBUG=true python manage.py collectstatic --noinput -v 0 \
    && chown -R app:app /app/var
USER app

EXPOSE 8000
CMD ["gunicorn", "deepfake_site.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
