# One image for every runtime role. The compiled stacks choose the role:
#   ECS (API, worker):    CMD from compiler/contract.py COMMANDS, e.g. python -m flowbuilder.runtime.worker
#   Lambda (API, scheduler): ImageConfig EntryPoint python -m awslambdaric, Command <handler>
# Build: docker build -t flow-builder-runtime .
FROM public.ecr.aws/docker/library/python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY compiler compiler
COPY runtime runtime
COPY schema schema
COPY profiles profiles
RUN pip wheel --no-cache-dir --wheel-dir /wheels "." awslambdaric

FROM public.ecr.aws/docker/library/python:3.12-slim
RUN useradd --system --uid 10001 --home /app flowbuilder
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels flowbuilder awslambdaric && rm -rf /wheels
USER 10001
ENV PYTHONUNBUFFERED=1 PORT=8000
EXPOSE 8000
# Default role: the API. The worker's task definition overrides the command; Lambda overrides both.
CMD ["python", "-m", "flowbuilder.runtime.api"]
