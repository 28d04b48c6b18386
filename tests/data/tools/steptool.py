"""A tiny pipeline step for tests (run by the local engine): copies inputs to ``<name>.<ext>`` in the cwd.

It appends one line per launch to ``--log`` (so tests count launches), can sleep, can fail while a marker
file exists (``--fail-if``), or fail only the first time (``--fail-once``, which creates its marker).
"""

import argparse
import hashlib
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ext", required=True)
    parser.add_argument("--sleep", type=float, default=0)
    parser.add_argument("--log", required=True)
    parser.add_argument("--tag", default="")
    parser.add_argument("--fail-if")
    parser.add_argument("--fail-once")
    parser.add_argument("--sleep-file", help="sleep as many seconds as this file says (not part of the cache key)")
    parser.add_argument("inputs", nargs="+")
    args = parser.parse_args()
    with open(args.log, "a") as log:
        log.write(f"{args.ext} {os.getpid()} {' '.join(os.path.basename(p) for p in args.inputs)}\n")
    if args.fail_if and os.path.exists(args.fail_if):
        print(f"failing because {args.fail_if} exists", file=sys.stderr)
        return 3
    if args.fail_once and not os.path.exists(args.fail_once):
        open(args.fail_once, "w").close()
        print("failing once", file=sys.stderr)
        return 4
    time.sleep(args.sleep)
    if args.sleep_file and os.path.exists(args.sleep_file):
        with open(args.sleep_file) as handle:
            time.sleep(float(handle.read().strip() or 0))
    for path in args.inputs:
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        name = os.path.basename(path).rsplit(".", 1)[0] + "." + args.ext
        with open(name, "w") as out:
            out.write(f"{digest} {args.tag}\n")
    return 0


sys.exit(main())
