"""Known bugs that e2e tests expose; each is a strict xfail reason (remove when fixed)."""

HYPERCORN_WORKER_EXIT_CODE_LOST = (
    "hypercorn 0.18.0 run() returns 0 when its worker process exits non-zero "
    "(hypercorn/run.py: the final `_join_exited(processes)` on the emptied list overwrites "
    "the code; pgjones/hypercorn#269, open PR #372), so `hypercorn ... authly.app` exits 0"
)
