# Seamline's production image (docs/deploy.md): the package installed without its dev extras, a bot
# project at /app (the retail template unless you add your own, see below) with its intent model
# trained at build time, run as an unprivileged user.
#
#   docker build -t seamline .
#   docker run --env-file deploy/seamline.env -p 8080:8080 seamline
#
# Your own bot project: a two-line image on top of this one (the model is trained again for it):
#   FROM seamline
#   COPY --chown=root:root mybot/ /app/
#   RUN seamline --project /app nlu train && rm -f /app/var/secret_key

# --- build: a virtual environment holding Seamline and its dependencies, nothing else ------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/seamline
WORKDIR /src
# .dockerignore keeps out .venv, tests, benchmarks, var/ and the rest of the working tree's clutter
COPY . .
RUN /opt/seamline/bin/pip install . && /opt/seamline/bin/seamline --help >/dev/null

# --- runtime -------------------------------------------------------------------------------------
FROM python:3.11-slim
ARG TEMPLATE=retail
ENV PATH=/opt/seamline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SEAMLINE_HOST=0.0.0.0 \
    SEAMLINE_PORT=8080 \
    SEAMLINE_WORKERS=1 \
    SEAMLINE_LOG_FORMAT=json
RUN groupadd --system --gid 10001 seamline \
    && useradd --system --uid 10001 --gid seamline --home-dir /app --no-create-home --shell /usr/sbin/nologin seamline
COPY --from=build /opt/seamline /opt/seamline
WORKDIR /app
# The bot project, and its intent model trained now, into /app/var/models: a container starts
# answering at once, and every container of one image understands alike. Training also writes a
# secret key into var/: removed, so that no secret is baked into a layer (SEAMLINE_SECRET_KEY comes
# from the environment, the same for every worker).
RUN seamline init /app --template "${TEMPLATE}" >/dev/null \
    && seamline --project /app nlu train \
    && rm -f /app/var/secret_key \
    && chown -R seamline:seamline /app/var
USER seamline:seamline
EXPOSE 8080
# /healthz: the process serves (no curl in the slim image; Python is there). /readyz also checks
# PostgreSQL, Redis and the schema: the load balancer's business, not a reason to restart.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SEAMLINE_PORT', '8080'), timeout=2)"]
# exec: the shell gives way to seamline, so `docker stop`'s SIGTERM reaches it and in-flight messages
# finish (SEAMLINE_SHUTDOWN_GRACE seconds; give the container's stop grace period more than that).
CMD ["sh", "-c", "exec seamline --project /app run --workers \"${SEAMLINE_WORKERS}\""]
