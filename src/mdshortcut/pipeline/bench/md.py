"""The MD benchmark: where a melt-quench replica's wall time goes (LAMMPS vs Python)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from mdshortcut.md.melt_quench import ReplicaFailure, replica_seed, run_replica
from mdshortcut.md.protocol import MeltQuench


def md_benchmark(melt_quenches: Sequence[MeltQuench], seed: int = 0) -> pd.DataFrame:
    """Run replica 0 of each dataset's melt-quench with its configured protocol and split
    its wall time (s) into LAMMPS ``run``/``minimize`` and the Python around them (setup,
    commands, snapshots, frame read-back). One row per dataset; a failed replica keeps its
    row with the reason."""
    rows = []
    for mq in melt_quenches:
        row = {"dataset": mq.dataset, "potential": mq.potential}
        try:
            result = run_replica(mq, 0, 0, replica_seed(seed, mq.dataset, 0, 0))
        except ReplicaFailure as exc:
            rows.append({**row, "reason": str(exc)})
            continue
        python_s = result.wall_s - result.lammps_s
        rows.append(
            {
                **row,
                "n_atoms": len(result.frames[0]),
                "frames": len(result.frames),
                "wall_s": result.wall_s,
                "lammps_s": result.lammps_s,
                "python_s": python_s,
                "python_overhead_pct": 100 * python_s / result.wall_s,
                "reason": "",
            }
        )
    return pd.DataFrame(rows)
