"""The pipeline's steps: thin Beam wrappers around the functions of `snapshot`.

In the order the graph (`pipeline.graph.build`) chains them:
- `manifest.ReadManifest`: the manifest's lines, with their file and number;
- `jobs.ParseJobs`: each line as a Job, or its coded error;
- `resume.CarryOver`: with `--resume`, the jobs that succeeded before are not run again;
- `jobs.PlanCaptures`: the jobs of each input planned together into capture tasks;
- `jobs.Capture`: each task's shots captured and written;
- `jobs.AssembleResults`: exactly one result per job, its sheets and track written;
- `notify.Notify`: each job's message sent, its outcome in the result;
- `results.WriteResults`: the results to Avro.
"""
