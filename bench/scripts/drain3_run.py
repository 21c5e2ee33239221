#!/usr/bin/env python3
"""Runs Python drain3 on one Loghub set for `aiops-bench loghub` (side-by-side comparison).

Usage: drain3_run.py INPUT.json MODE REPS
  INPUT.json: a JSON array of the lines' Content strings.
  MODE: "default" (TemplateMinerConfig() as shipped: sim_th 0.4, depth 4, max_children 100,
        no masking) or "masked" (the same plus the masking instructions of drain3's example
        drain3.ini that its README points to, each rendered as "<*>").
  REPS: how many times the lines are mined with a fresh miner for the timing.
Prints one JSON object: cluster id and final template per line (first run), seconds of
add_log_message over all reps (no I/O), lines mined.
"""

import json
import sys
import time

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

# drain3's examples/drain3.ini masking list.
MASKS = [
    (r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    (r"(?<=executed cmd )(\".+?\")", "CMD"),
]


def make_miner(mode):
    config = TemplateMinerConfig()
    config.profiling_enabled = False
    if mode == "masked":
        # The README's regexes; each mask renders as Loghub's "<*>" (mask_with "*") instead of
        # "<NUM>"/"<IP>"… so parsing accuracy compares like with like. Grouping is unaffected
        # except where two kinds of masks would have kept lines apart.
        config.masking_instructions = [MaskingInstruction(p, "*") for p, _ in MASKS]
    return TemplateMiner(config=config)


def main():
    path, mode, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(path, encoding="utf-8") as f:
        lines = json.load(f)
    seconds = 0.0
    ids = []
    miner = None
    for rep in range(reps):
        m = make_miner(mode)
        start = time.perf_counter()
        results = [m.add_log_message(line) for line in lines]
        seconds += time.perf_counter() - start
        if rep == 0:
            miner = m
            ids = [r["cluster_id"] for r in results]
    templates = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
    out = {
        "cluster_ids": ids,
        "templates": [templates.get(i, "") for i in ids],
        "seconds": seconds,
        "lines": len(lines) * reps,
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
