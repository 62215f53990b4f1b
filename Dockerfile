# Followthrough (worker, API, CLI) for the production-shaped topology in docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md worker.py starter.py ./
COPY followthrough ./followthrough
COPY workflows ./workflows
COPY activities ./activities
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["followthrough"]
EXPOSE 8000
CMD ["worker"]
