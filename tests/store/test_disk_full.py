"""A full disk: the caller gets a plain refusal, and nothing already acknowledged is lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from hmi.store.verify import verify_data_dir

FILLER = textwrap.dedent(
    """
    import resource, signal, sys
    from pathlib import Path
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    from hmi.core.errors import RecordError
    from hmi.store.db import Store
    from hmi.store.tables import AUDIT

    d = Path(sys.argv[1])
    store = Store.create(d)
    store.append(AUDIT, {"action": "start", "outcome": "done"})
    store.checkpoint_now()
    limit = max(p.stat().st_size for p in d.iterdir() if p.is_file()) + 200_000
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # writes beyond fail like ENOSPC
    acked = 1
    for _ in range(10_000):
        try:
            store.append(AUDIT, {"action": "fill", "outcome": "done", "detail": "x" * 2000})
        except RecordError as exc:
            print("REFUSED", exc.message, flush=True)
            break
        acked += 1
    print("ACKED", acked, flush=True)
    store.close()
    """
)


def test_full_disk_refuses_plainly_and_loses_nothing(tmp_path: Path):
    data = tmp_path / "data"
    out = subprocess.run(
        [sys.executable, "-c", FILLER, str(data)], capture_output=True, text=True, timeout=120
    )
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    assert "disk is full" in lines["REFUSED"] and "not performed" in lines["REFUSED"]
    acked = int(lines["ACKED"])
    report = verify_data_dir(data)
    assert report.ok, report.problems
    assert report.rows["audit_records"] == acked
