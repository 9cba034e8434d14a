# One image for every runtime role. The compiled stacks choose the role:
#   ECS (API, worker):    CMD from compiler/contract.py COMMANDS, e.g. python -m flowbuilder.runtime.worker
#   Lambda (API, scheduler): ImageConfig EntryPoint python -m awslambdaric, Command <handler>
# Build: docker build -t flow-builder-runtime .
#
# The runtime roles only: requirements-runtime.txt at constraints.txt's versions, then the flowbuilder wheel
# without its dependencies, so the compiler's (troposphere, cfn-lint, moto, flask, ...) are not in the image.
# tests/test_image_env.py runs these pip commands into a temporary venv and checks the result; .ci/run lints
# this file with hadolint.
FROM public.ecr.aws/docker/library/python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md requirements-runtime.txt constraints.txt ./
COPY compiler compiler
COPY runtime runtime
COPY schema schema
COPY profiles profiles
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && pip wheel --no-cache-dir --wheel-dir /wheels -r requirements-runtime.txt -c constraints.txt

FROM public.ecr.aws/docker/library/python:3.12-slim
RUN useradd --system --uid 10001 --home /app flowbuilder
WORKDIR /app
COPY --from=build /wheels /wheels
# Every wheel of the resolved set, as it is: no resolution here, and none of flowbuilder's compiler dependencies.
RUN pip install --no-cache-dir --no-index --no-deps /wheels/*.whl \
    && rm -rf /wheels
USER 10001
ENV PYTHONUNBUFFERED=1 PORT=8000
EXPOSE 8000
# Default role: the API. The worker's task definition overrides the command; Lambda overrides both.
CMD ["python", "-m", "flowbuilder.runtime.api"]
