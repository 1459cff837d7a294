"""Dataflow, checked offline: Beam's own translation of the pipeline for Dataflow, not submitted."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile

import pytest
from apache_beam.portability.api import beam_runner_api_pb2 as api
from apache_beam.runners.dataflow.internal import apiclient

from pipeline import __main__ as command
from pipeline.options import SnapshotOptions
from tests.helpers import ROOT, pipeline_args, pipeline_command, request_line

pytestmark = pytest.mark.slow  # Dataflow's own translation


DATAFLOW = [
    "--runner",
    "DataflowRunner",
    "--dry_run",
    "True",
    "--no_auth",
    "--project",
    "my-project-123",
    "--region",
    "europe-west1",
    "--temp_location",
    "gs://beam/tmp",
    "--staging_location",
    "gs://beam/stage",
    "--sdk_location",
    "container",
    "--setup_file",
    os.path.join(ROOT, "setup.py"),
]
# the worker settings that docs/scaling.md assumes
WORKERS = ["--machine_type", "n1-standard-4", "--max_num_workers", "100", "--experiments", "use_runner_v2"]
STEPS = [
    "ReadManifest",
    "ParseJobs",
    "PlanCaptures",
    "Capture",
    "AssembleResults",
    "Notify",
    "WriteResults",
]


def test_the_command_translates_for_dataflow_and_submits_nothing(tmp_path, bucket_root):
    (tmp_path / "m.jsonl").write_text(request_line() + "\n")
    done = subprocess.run(
        pipeline_command(str(tmp_path / "m.jsonl"), str(tmp_path / "res"), str(bucket_root), *DATAFLOW),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"with 7 steps ({', '.join(STEPS)}); nothing was submitted")
    assert not list(tmp_path.glob("res*"))


def test_the_translated_job_has_every_step_the_package_and_the_flags(tmp_path, bucket_root):
    (tmp_path / "m.jsonl").write_text(request_line() + "\n")
    args = command.parse_args(
        [
            "--manifest",
            str(tmp_path / "m.jsonl"),
            "--results",
            str(tmp_path / "res"),
            "--bucket_root",
            str(bucket_root),
            "--sync_timeout",
            "7",
            "--probe_timeout",
            "9",
            *DATAFLOW,
        ]
    )
    job = command.submit(args).job
    transforms = job.proto_pipeline.components.transforms
    names = {t.unique_name for t in transforms.values()}
    assert set(STEPS) <= names
    assert {
        "PlanCaptures/GroupByInput",
        "PlanCaptures/Plan",
        "Capture/Spread",
        "Capture/Decode",
        "AssembleResults/Group",
        "AssembleResults/Finish",
        "Notify/Send",
        "WriteResults/WriteAvro",
    } <= names
    # the --setup_file package, built and staged as workflow.tar.gz
    (environment,) = job.proto_pipeline.components.environments.values()
    staged = {
        api.ArtifactStagingToRolePayload.FromString(d.role_payload).staged_name: api.ArtifactFilePayload.FromString(
            d.type_payload
        ).path
        for d in environment.dependencies
    }
    with tarfile.open(staged["workflow.tar.gz"]) as sdist:
        members = sdist.getnames()
    assert any(m.endswith("snapshot/jobs.py") for m in members)
    assert any(m.endswith("pipeline/graph.py") for m in members)
    # the pipeline's own flags travel in the job's options
    options = job.options.view_as(SnapshotOptions)
    assert (options.sync_timeout, options.probe_timeout, options.manifest) == (7.0, 9.0, str(tmp_path / "m.jsonl"))
    assert job.options.get_all_options()["bucket_root"] == str(bucket_root)


def test_on_runner_v2_the_job_names_the_workers_that_scaling_md_assumes(tmp_path, bucket_root):
    with open(os.path.join(ROOT, "docs", "scaling.md")) as doc:
        scaling = " ".join(doc.read().split())
    assert " ".join(WORKERS) in scaling
    (tmp_path / "m.jsonl").write_text(request_line() + "\n")
    args = pipeline_args(str(tmp_path / "m.jsonl"), str(tmp_path / "res"), str(bucket_root), *DATAFLOW, *WORKERS)
    job = command.submit(command.parse_args(args)).job
    # the job's description as Dataflow would receive it (built when a job is submitted)
    environment = apiclient.Environment(
        packages=[],
        options=job.options,
        environment_version=apiclient._FNAPI_ENVIRONMENT_MAJOR_VERSION,
        proto_pipeline_staged_url="gs://beam/stage/pipeline.pb",
        proto_pipeline=job.proto_pipeline,
    ).proto
    assert "use_runner_v2" in environment.experiments
    (pool,) = environment.worker_pools
    assert (pool.machine_type, pool.autoscaling_settings.max_num_workers) == ("n1-standard-4", 100)
    # one SDK process per vCPU, on Beam's container for this Python: the Flex template's launcher's
    (sdk,) = pool.sdk_harness_container_images
    assert sdk.use_single_core_per_container
    assert f"beam_python{sys.version_info.major}.{sys.version_info.minor}_sdk:" in sdk.container_image
    assert sdk.container_image == pool.worker_harness_container_image
