#!/usr/bin/env python3
"""Compiles the C shim (syntax and types only, no link) against the headers of Kamailio source
trees, for versions there is no binary of here (6.1, master: a tree from a git checkout):

    scripts/shim_compile_check.py <kamailio source tree> [...]

The defines are the tree's own `make printcdefs` (as scripts/kamailio_target.py uses them) with
the version the tree says; what differs between versions is handled in c-shim/ with Kamailio's
version macro VERSIONVAL. The warnings that hide an ABI mismatch in C (a callback of another
signature, a missing prototype, an int for a pointer) are errors here, as in build.rs."""

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kamailio_target as kt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STRICT = ["-Werror=implicit-function-declaration", "-Werror=incompatible-pointer-types", "-Werror=int-conversion"]


def check(tree):
    tree = Path(tree)
    ver = kt.headers_version(tree)
    defs = [d for d in kt.printcdefs(tree) if kt.define_name(d) not in ("VERSION", "VERSIONVAL")]
    defs += ['-DVERSION="%s"' % ver, "-DVERSIONVAL=%d" % kt.versionval(ver),
             "-DKSR_PTHREAD_MUTEX_SHARED", '-DMOD_NAME="imconf"']
    ok = True
    for c in sorted((ROOT / "c-shim").glob("*.c")):
        r = subprocess.run(["gcc", "-fsyntax-only", "-std=gnu11", "-pthread", "-I", str(tree / "src"),
                            "-I", str(ROOT / "c-shim")] + STRICT + defs + [str(c)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        if r.returncode != 0:
            ok = False
            print(r.stdout.strip())
    print("shim-check: c-shim %s against Kamailio %s (%s)" % ("compiles" if ok else "does NOT compile", ver, tree))
    return ok


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    results = []
    for t in sys.argv[1:]:
        try:
            results.append(check(t))
        except kt.TargetError as e:
            print("shim-check: %s: %s" % (t, e))
            results.append(False)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
