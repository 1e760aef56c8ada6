# The one image Remora ships: the webhook, the capability operators, the agent and the
# broker are all `remora <command>` (the chart and the catalog pass the command).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY remora remora
COPY common common
COPY webhook webhook
COPY operators operators
COPY agent agent
COPY certs certs
COPY lint lint
COPY localcluster localcluster
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# Non-root with a fixed id, as the chart's hardened security context expects.
USER 65532:65532
ENTRYPOINT ["remora"]
