#!/usr/bin/env python3
"""The Kamailio that imconf is built for, tested with and packaged for: one place derives it.

    scripts/kamailio_target.py env      # shell assignments: KAM_BIN, KAM_KAMCMD, KAM_MODDIR, ...
    scripts/kamailio_target.py build    # for build.rs: src=, bin=, srdb1_dir=, cdef= lines
    scripts/kamailio_target.py check-module FILE [BIN]
                                        # FILE was built for BIN (default: the target), else one
                                        # line saying for what it was built, exit 1

The target comes from the environment (docs/packaging.md, "Building for the Kamailio you run"):
  KAMAILIO_PREFIX   an installed tree: <prefix>/sbin/kamailio, <prefix>/sbin/kamcmd, and its
                    source at <prefix>/src unless KAMAILIO_SRC says otherwise
  KAMAILIO_BIN      the kamailio binary (default /usr/sbin/kamailio, Debian's package)
  KAMAILIO_SRC      its source tree, for the headers (default .deps/kamailio-src, which
                    `make deps` unpacks from Debian's source package of the installed kamailio)
  KAMCMD            its kamcmd (default: beside the binary)

Kamailio's loader accepts a module only when its version string and its compile-flags string
equal the core's byte for byte (ksr_version_control). Both are derived here from the binary
itself (`kamailio -v`): the version line gives NAME, VERSION, ARCH and OS_QUOTED; every name on
its flags line is mapped back, through the headers' own core/ver_defs.h, to the -D defines that
print it. The defines that are not part of the flags string (platform, STATISTICS, ...) come from
the source tree's build system (`make printcdefs`). A gcc probe then compiles ver_defs.h with the
result and compares both strings with the binary's: a build that would not load is refused here,
with one line, instead of at Kamailio's start.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class TargetError(Exception):
    pass


def run(cmd, **kw):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    except FileNotFoundError as e:
        raise TargetError("cannot run %s: %s" % (cmd[0], e))


def split_keep_quotes(text):
    """Whitespace-separated tokens, double-quoted runs kept whole with their quotes:
    `-DNAME="kamailio" -DCOMPILER="gcc 12.2.0"` gives two tokens."""
    out, cur, quoted = [], "", False
    for c in text:
        if c == '"':
            quoted = not quoted
            cur += c
        elif c.isspace() and not quoted:
            if cur:
                out.append(cur)
                cur = ""
        else:
            cur += c
    if cur:
        out.append(cur)
    return out


def binary_info(kam_bin):
    """What the binary says of itself: its version, flags, default module path, compiler."""
    v = run([kam_bin, "-v"])
    if v.returncode != 0 or "version:" not in v.stdout:
        raise TargetError("%s -v failed: %s" % (kam_bin, (v.stderr or v.stdout).strip()[:200]))
    m = re.search(r"^version: (\S+) (\S+) \(([^/)]+)/([^)]+)\)", v.stdout, re.M)
    if not m:
        raise TargetError("cannot read the version line of `%s -v`" % kam_bin)
    flags = re.search(r"^flags: (.*)$", v.stdout, re.M)
    if not flags:
        raise TargetError("no flags line in `%s -v`" % kam_bin)
    awl = re.search(r"ADAPTIVE_WAIT_LOOPS[ =](\d+)", v.stdout)
    cc = re.search(r"^compiled (?:on .* )?with (.*)$", v.stdout, re.M)
    i = run([kam_bin, "-I"])
    mods = re.search(r"Default paths to modules: (.*)$", i.stdout, re.M)
    return {
        "name": m.group(1),
        "version": m.group(2),
        "arch": m.group(3),
        "os_quoted": m.group(4),
        "full_version": "%s %s (%s/%s)" % m.groups(),
        "flags": flags.group(1).rstrip(),
        "adaptive_wait_loops": awl.group(1) if awl else None,
        "compiler": cc.group(1).strip() if cc else None,
        "mod_paths": mods.group(1).strip().split(":") if mods else [],
    }


def headers_version(src):
    """X.Y.Z of the source tree, from its Makefile.defs (5.x, 6.x) or its CMakeLists.txt."""
    mk = src / "src" / "Makefile.defs"
    if mk.exists():
        text = mk.read_text(errors="replace")
        parts = [re.search(r"^%s\s*=\s*(\d+)" % k, text, re.M) for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL")]
        if all(parts):
            return ".".join(p.group(1) for p in parts)
    cm = src / "CMakeLists.txt"
    if cm.exists():
        m = re.search(r"project\([^)]*VERSION\s+(\d+\.\d+\.\d+)", cm.read_text(errors="replace"), re.S)
        if m:
            return m.group(1)
    raise TargetError("cannot tell the Kamailio version of the headers in %s" % src)


def flag_requirements(ver_defs):
    """{printed flag name: [macros that print it]} for the names SER_COMPILE_FLAGS prints,
    read from core/ver_defs.h (a #ifdef/#elif/#else stack; FAST_LOCK-ADAPTIVE_WAIT needs both
    FAST_LOCK and ADAPTIVE_WAIT). Also returns every macro the conditions of those names test
    (MEM_JOIN_FREE has a _STR that SER_COMPILE_FLAGS leaves out: not a flag, kept as built)."""
    text = ver_defs.read_text(errors="replace")
    body = re.search(r"#define\s+SER_COMPILE_FLAGS((?:.*\\\n)*.*)", text)
    if not body:
        raise TargetError("no SER_COMPILE_FLAGS in %s" % ver_defs)
    used = set(re.findall(r"\b(\w+_STR)\b", body.group(1)))
    printed = {}
    tested = set()
    stack = []  # per open #if: the macro the current branch requires, or None
    branch_macros = []  # per open #if: every macro its branches test
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"#\s*ifdef\s+(\w+)", line) or re.match(r"#\s*if\s+defined\s*\(?\s*(\w+)", line)
        if m:
            stack.append(m.group(1))
            branch_macros.append({m.group(1)})
            continue
        if re.match(r"#\s*if(n?def)?\b", line):
            stack.append(None)
            branch_macros.append(set())
            continue
        m = re.match(r"#\s*elif\s+defined\s*\(?\s*(\w+)", line)
        if m and stack:
            stack[-1] = m.group(1)
            branch_macros[-1].add(m.group(1))
            continue
        if re.match(r"#\s*(else|elif)\b", line) and stack:
            stack[-1] = None
            continue
        if re.match(r"#\s*endif\b", line) and stack:
            stack.pop()
            branch_macros.pop()
            continue
        m = re.match(r'#\s*define\s+(\w+_STR)\s*,?\s*"([^"]*)"', line)
        if m and m.group(1) in used:
            for ms in branch_macros:
                tested.update(ms)
            if m.group(2):
                printed[m.group(2).lstrip(",- ").strip()] = [c for c in stack if c]
    return printed, tested


def printcdefs(src):
    """The -D list of the source tree's own build system (platform and feature defines)."""
    mk = src / "src" / "Makefile"
    if not mk.exists():
        raise TargetError("%s has no Makefile (needed for `make printcdefs`)" % (src / "src"))
    r = run(["make", "-s", "--no-print-directory", "-C", str(src / "src"), "printcdefs"])
    line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    if r.returncode != 0 or "-D" not in line:
        raise TargetError("`make printcdefs` failed in %s: %s" % (src / "src", (r.stderr or r.stdout)[-300:]))
    return split_keep_quotes(line)


def versionval(version):
    """Kamailio's VERSIONVAL of "X.Y.Z...": X * 10^6 + Y * 10^3 + Z."""
    maj, mnr, pat = (int(x) for x in re.match(r"(\d+)\.(\d+)\.(\d+)", version).groups())
    return maj * 1000000 + mnr * 1000 + pat


def check_module(module, kam_bin):
    """None when `module` carries the version string of `kam_bin` (Kamailio's loader refuses it
    otherwise: ksr_version_control), else why not, in one line. The flags string is left to the
    loader: from 6.1 `kamailio -v` prints more flags than it compares."""
    full = binary_info(kam_bin)["full_version"]
    try:
        data = Path(module).read_bytes()
    except OSError as e:
        return "%s: %s (make build)" % (module, e.strerror)
    if (full.encode() + b"\0") in data:
        return None
    built = re.search(rb"kamailio \d+\.\d+\.\d+\S* \([A-Za-z0-9_]+/[A-Za-z0-9_]+\)\0", data)
    return "%s was built for %s, not for %s (%s): make build for that Kamailio" % (
        module, built.group(0)[:-1].decode() if built else "another Kamailio", full, kam_bin)


def define_name(tok):
    return tok[2:].split("=", 1)[0] if tok.startswith("-D") else None


def derive_cdefs(src, info):
    """The -D list for the module: printcdefs, with the version defines and every flag macro
    replaced by what the binary says it was built with."""
    printed, tested = flag_requirements(src / "src" / "core" / "ver_defs.h")
    want = set()
    for name in [f.strip() for f in info["flags"].split(",") if f.strip()]:
        # NOSMP is printed glued to the lock name ("FAST_LOCK-NOSMP")
        for part in ([name[:-6], "NOSMP"] if name.endswith("-NOSMP") and name not in printed else [name]):
            if part not in printed:
                raise TargetError("the binary prints the flag %s, which the headers' core/ver_defs.h "
                                  "does not know: headers and binary are different Kamailio builds" % part)
            want.update(printed[part])
    replaced = {"NAME", "VERSION", "ARCH", "OS_QUOTED", "VERSIONVAL", "ADAPTIVE_WAIT_LOOPS", "COMPILER"}
    out = [t for t in printcdefs(src) if define_name(t) not in tested | replaced]
    out += ['-DNAME="%s"' % info["name"], '-DVERSION="%s"' % info["version"], '-DARCH="%s"' % info["arch"],
            '-DOS_QUOTED="%s"' % info["os_quoted"], "-DVERSIONVAL=%d" % versionval(info["version"])]
    if info["compiler"]:
        out.append('-DCOMPILER="%s"' % info["compiler"])
    if info["adaptive_wait_loops"]:
        out.append("-DADAPTIVE_WAIT_LOOPS=%s" % info["adaptive_wait_loops"])
    out += ["-D%s" % m for m in sorted(want - header_defined(src, want))]
    return out


def header_defined(src, macros):
    """The macros of `macros` that a core header defines itself (mem/q_malloc.h: DBG_QM_MALLOC
    when DBG_SR_MEMORY is set): not passed with -D, or every file would carry them."""
    found = set()
    for h in (src / "src" / "core").rglob("*.h"):
        if h.name == "ver_defs.h":
            continue
        text = h.read_text(errors="replace")
        found.update(m for m in macros if re.search(r"(?m)^\s*#\s*define\s+%s\s*$" % re.escape(m), text))
    return found


def compile_probe(src, cdefs, includes):
    """SER_FULL_VERSION and SER_COMPILE_FLAGS as a file that includes `includes` (paths under
    src/core) and then core/ver_defs.h expands them with `cdefs`."""
    with tempfile.TemporaryDirectory() as tmp:
        c = Path(tmp) / "probe.c"
        c.write_text("#include <stdio.h>\n" + "".join('#include "core/%s"\n' % i for i in includes)
                     + '#include "core/ver_defs.h"\n'
                     'int main(void){printf("%s\\n%s\\n", SER_FULL_VERSION, SER_COMPILE_FLAGS);return 0;}\n')
        exe = Path(tmp) / "probe"
        r = run(["gcc", "-o", str(exe), str(c), "-I", str(src / "src"), "-I", str(src / "src" / "core")] + cdefs)
        if r.returncode != 0:
            raise TargetError("compiling the version probe failed: %s" % r.stderr[-300:])
        full, flags = run([str(exe)]).stdout.split("\n")[:2]
    return full, flags


def ver_c_includes(src):
    """The headers core/ver.c includes before ver_defs.h: from 6.1 mem/memcore.h, whose allocator
    headers define DBG_QM_MALLOC & co. when DBG_SR_MEMORY is set, so that `kamailio -v` prints them."""
    ver_c = src / "src" / "core" / "ver.c"
    out = []
    for line in (ver_c.read_text(errors="replace").splitlines() if ver_c.exists() else []):
        m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
        if m and m.group(1) == "ver_defs.h":
            return out
        if m and m.group(1) != "autover.h":
            out.append(m.group(1))
    return []


def probe(src, cdefs, info, kam_bin):
    """Checks, before anything is built, that the strings the module will carry are the ones the
    loader compares: `kamailio -v` prints ver.c's expansion of ver_defs.h, the loader compares
    core/sr_module.c's, which c-shim/shim_ver.c reproduces (ver_defs.h alone). Where the two
    differ (6.1), the loader's must be a string of the binary."""
    full, printed = compile_probe(src, cdefs, ver_c_includes(src))
    if full != info["full_version"]:
        raise TargetError("derived version %r != the binary's %r" % (full, info["full_version"]))
    if printed != info["flags"]:
        raise TargetError("derived compile flags differ from the binary's:\n  module: %s\n  core:   %s"
                          % (printed, info["flags"]))
    _, loader = compile_probe(src, cdefs, [])
    if loader != printed and (b"\0" + loader.encode() + b"\0") not in Path(kam_bin).read_bytes():
        raise TargetError("the flags string the module would carry (%s) is not one of %s's strings"
                          % (loader, kam_bin))
    return loader


def resolve():
    env = os.environ
    prefix = Path(env["KAMAILIO_PREFIX"]) if env.get("KAMAILIO_PREFIX") else None
    kam_bin = Path(env.get("KAMAILIO_BIN") or (prefix / "sbin/kamailio" if prefix else "/usr/sbin/kamailio"))
    src = Path(env.get("KAMAILIO_SRC") or (prefix / "src" if prefix else ROOT / ".deps/kamailio-src"))
    if not kam_bin.is_file():
        raise TargetError("no kamailio binary at %s (make deps installs Debian's; or set KAMAILIO_BIN "
                          "or KAMAILIO_PREFIX)" % kam_bin)
    if not (src / "src/core/sr_module.h").is_file():
        raise TargetError("no Kamailio headers under %s (make deps unpacks them; or set KAMAILIO_SRC)" % src)
    info = binary_info(str(kam_bin))
    hver = headers_version(src)
    bver = re.match(r"\d+\.\d+\.\d+", info["version"])
    if not bver or bver.group(0) != hver:
        raise TargetError("the headers in %s are Kamailio %s but %s is %s: point KAMAILIO_SRC at the "
                          "source of the Kamailio you run" % (src, hver, kam_bin, info["version"]))
    kamcmd = Path(env.get("KAMCMD") or kam_bin.parent / "kamcmd")
    moddir = next((p for p in info["mod_paths"] if (Path(p) / "tm.so").is_file()), None)
    if env.get("KAMAILIO_MODULES"):
        moddir = env["KAMAILIO_MODULES"]
    if not moddir:
        raise TargetError("cannot find the module directory of %s (its default %s holds no tm.so; "
                          "set KAMAILIO_MODULES)" % (kam_bin, info["mod_paths"]))
    # libsrdb1 is a library beside the modules up to 5.8; from 6.0 it is inside the binary
    libdir = Path(moddir).parent
    srdb1 = str(libdir) if any(libdir.glob("libsrdb1.so*")) else ""
    deb = ""
    r = run(["dpkg", "-S", str(kam_bin.resolve())])
    if r.returncode == 0 and r.stdout.startswith("kamailio:"):
        deb = run(["dpkg-query", "-W", "-f=${Version}", "kamailio"]).stdout.strip()
    return {"bin": str(kam_bin), "kamcmd": str(kamcmd), "moddir": moddir, "src": str(src),
            "version": info["version"], "full_version": info["full_version"], "flags": info["flags"],
            "srdb1_dir": srdb1, "deb_version": deb, "info": info}


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else "env"
    try:
        if cmd == "check-module" and len(sys.argv) in (3, 4):
            why = check_module(sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else resolve()["bin"])
            if why:
                print("imconf: %s" % why, file=sys.stderr)
                return 1
            return 0
        t = resolve()
        if cmd == "env":
            for k in ("bin", "kamcmd", "moddir", "src", "version", "full_version", "flags", "srdb1_dir",
                      "deb_version"):
                print("KAM_%s=%s" % (k.upper(), shlex.quote(t[k])))
        elif cmd == "build":
            cdefs = derive_cdefs(Path(t["src"]), t["info"])
            probe(Path(t["src"]), cdefs, t["info"], t["bin"])
            print("src=%s" % t["src"])
            print("bin=%s" % t["bin"])
            print("srdb1_dir=%s" % t["srdb1_dir"])
            for d in cdefs:
                print("cdef=%s" % d)
        elif cmd == "json":
            t.pop("info")
            print(json.dumps(t, indent=1))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except TargetError as e:
        print("imconf: Kamailio target: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
