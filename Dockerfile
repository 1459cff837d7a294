# The pipeline as a Dataflow Flex Template (docs/running.md#a-flex-template). The launcher runs
# `python -m pipeline` with the template's parameters; the workers install the same package
# from setup.py, on Beam's own SDK container for this Python.
FROM gcr.io/dataflow-templates-base/python311-template-launcher-base

WORKDIR /template
COPY pyproject.toml setup.py README.md ./
COPY snapshot snapshot
COPY pipeline pipeline
COPY transforms transforms
RUN pip install --no-cache-dir ".[dataflow]" \
 && printf 'import runpy\nrunpy.run_module("pipeline", run_name="__main__", alter_sys=True)\n' > launch.py

ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/template/launch.py
ENV FLEX_TEMPLATE_PYTHON_SETUP_FILE=/template/setup.py
