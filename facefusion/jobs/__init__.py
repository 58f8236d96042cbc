"""FaceFusion 3.5.0's job queue: job files in its format and folders (store.py), one lock per job (lock.py), the
job-manager commands (manager.py), step options ↔ RunConfig (steps.py), running the steps through the workflows
(runner.py, finalize.py) and the command routes (commands.py)."""
