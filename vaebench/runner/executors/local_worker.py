"""The process of one local run: read the job (JSON) from stdin, run it, exit.

Started by the local executor as `python -m vaebench.runner.executors.local_worker RUN_ID` (the
run id, or pack-RUN_ID for a pack of runs trained together, is there for `ps`). Exit code 0: the
run's files (metrics.json or failed.json) say how it went; any other exit (a signal, an uncaught
exception) means the process died first.
"""

import ctypes
import json
import os
import signal
import sys


BUSY = 75  # exit code (EX_TEMPFAIL): the run was left to the process that holds its lock


def die_with_parent(parent: int) -> None:
    """Linux: this process gets SIGKILL when `parent` dies (a killed `vaebench run` must not
    leave runs training behind it that a new `vaebench run` would train a second time)."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


def main() -> int:
    job = json.load(sys.stdin)
    die_with_parent(job["parent"])
    import torch

    torch.set_num_threads(job["threads"])
    from vaebench.runner.run import run_job, run_pack

    if len(job["specs"]) > 1:  # a pack: each run's files say how it went
        run_pack(job["specs"], job["results_dir"], job["data_root"], progress=False,
                 fid_weights=job["fid_weights"])
        return 0
    out = run_job(job["specs"][0], job["results_dir"], job["data_root"], progress=False,
                  fid_weights=job["fid_weights"], train=job.get("train", True), metrics=job.get("metrics"))
    if out["status"] == "busy":  # another process holds the run's lock: nothing was written
        print(f"vaebench: skipped: another process is training it ({out['holder']})", flush=True)
        return BUSY
    return 0  # done or failed, run_job recorded which; any other exit is the process dying


if __name__ == "__main__":
    sys.exit(main())
