"""One setup file for `pip install -e .`, the tests and Dataflow's --setup_file."""
from setuptools import find_packages, setup

setup(
    name="snapshot-pipeline",
    version="0.1.0",
    description="Bulk video snapshots (the SubmitSnapshotJob contract) as an Apache Beam pipeline",
    python_requires=">=3.11",
    packages=find_packages(include=["snapshot", "snapshot.*", "pipeline", "pipeline.*",
                                    "transforms", "transforms.*"]),
    package_data={"snapshot": ["*.avsc"]},
    install_requires=[
        "apache-beam[gcp]>=2.60,<3",
        "av>=18,<20",
        "pillow>=10,<13",
        "numpy>=1.24",
        "google-cloud-storage>=2.10,<4",
        "fastavro>=1.9,<2",
        "tqdm>=4.60",
    ],
    extras_require={
        # what launching on Dataflow with --setup_file needs (Beam stages this package with it)
        "dataflow": ["build>=1"],
        "test": ["pytest>=8", "alibabacloud-mts20140618>=6,<7", "webvtt-py>=0.5,<1",
                 "gcp-storage-emulator>=2024.8", "cryptography>=42", "hypothesis>=6.100", "build>=1"],
    },
)
