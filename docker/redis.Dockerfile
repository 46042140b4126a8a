# Redis from Debian's package, for machines that cannot pull the official image
# (docker/docker-compose.offline.yml). The compose service gives the command.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/*
USER redis
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
