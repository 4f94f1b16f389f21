"""Integration tests: operator ecosystem (registered with @test; run by run.py)."""

from itest import *  # noqa: F401,F403


# (issue 8) The shipped example configurations run as shipped (kamailio-cfg/imconf-ims*.cfg, not
# the test template), the SIPp scenarios an operator uses (tests/sipp/ims_*.xml), the Prometheus
# export through xhttp_prom, and the Debian package installed on this machine with dpkg.


IMS_SESSION = "sip:chat1@127.0.0.1"


PKG = "kamailio-imconf-modules"


def sipp_for(ctx, scenario, name, keys, duration_ms=None, timeout=30):
    """ctx.sipp_start, plus SIPp's -d (the pause of ims_participant.xml) when duration_ms is given:
    the same command line (ports, traces, keys), registered the same way (stopped by pid at the
    end, its trace checked by ctx.sipp_wait)."""
    if duration_ms is None:
        return ctx.sipp_start(scenario, name, keys=keys, timeout=timeout, recv_timeout_ms=15000)
    real_popen = subprocess.Popen

    def popen_with_d(cmd, *a, **kw):
        return real_popen(list(cmd) + ["-d", str(duration_ms)], *a, **kw)
    H.subprocess.Popen = popen_with_d
    try:
        run = ctx.sipp_start(scenario, name, keys=keys, timeout=timeout, recv_timeout_ms=15000)
    finally:
        H.subprocess.Popen = real_popen
    run.cmd = list(run.cmd) + ["-d", str(duration_ms)]
    return run


def ims_keys(ctx, who, **over):
    user = who.split(":", 1)[1].split("@", 1)[0]
    k = dict(session=IMS_SESSION, ruri=IMS_SESSION, subscriber=who, subscriber_user=user,
             pai_hdr="P-Asserted-Identity: <%s>" % who, expires_hdr="Expires: 600",
             extra_hdr="X-Omitted: 1")
    k.update(over)
    return ctx.keys(**k)


def scrape(ctx, port):
    """GET http://127.0.0.1:<port>/metrics (xhttp_prom) with curl: {name: value} of the
    kamailio_imconf_* samples (`name value timestamp` lines)."""
    r = subprocess.run(["curl", "-sS", "--max-time", "5", "http://127.0.0.1:%d/metrics" % port],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
    text = r.stdout.decode("utf-8", "replace")
    expect(r.returncode == 0, "curl /metrics failed (exit %s): %s" % (r.returncode, text[:300]))
    out = {}
    for line in text.splitlines():
        m = re.match(r"^kamailio_imconf_(\w+)\s+(-?\d+)(\s+\d+)?\s*$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


@test("ims_example_scenario_and_metrics", "issue 8 R6 R26 R67 R68 R79 (examples, Prometheus)", standin="skip")
def t_ims_example(ctx):
    """kamailio-cfg/imconf-ims.cfg as shipped, then its KEMI twin (imconf-ims-kemi.cfg +
    imconf-ims.lua): SIPp participants INVITE the session URI (alice opens it, bob joins with
    `Privacy: id` and leaves, alice's BYE closes it), alice watches with ims_watch.xml; the
    NOTIFYs show alice, bob appearing and leaving (never bob's identity: privacy from the INVITE),
    then the end; a non-participant gets 403, an unknown session 404; and the imconf counters
    scraped from xhttp_prom's /metrics move accordingly (sessions, subscriptions, subscribe_200 /
    403 / 404, notifies_full / partial / terminated, notify_responses_2xx)."""
    if not __import__("shutil").which("curl"):
        raise TestFailure("curl is missing (scripts/deps.sh installs it)")
    # Kamailio's TCP main process logs this when its TCP workers exit first on SIGTERM
    ctx.log_allow = r"receive_fd\(\): EOF on [0-9]+"
    for variant, cfg, defines in (
            ("native", "imconf-ims.cfg", []),
            ("kemi", "imconf-ims-kemi.cfg", ['IMCONF_LUA="%s"' % (ROOT / "kamailio-cfg" / "imconf-ims.lua")])):
        in_variant(ctx, variant)
        srv = start_example(ctx, ROOT / "kamailio-cfg" / cfg, defines=defines)
        ctx.wait_for("xhttp_prom on tcp:127.0.0.1:%d" % srv.http_port,
                     lambda: "sessions" in scrape(ctx, srv.http_port), timeout=8)
        m0 = scrape(ctx, srv.http_port)
        expect(m0.get("sessions") == 0 and m0.get("subscribe_200") == 0 and len(m0) >= 20,
               "%s: fresh server: want the imconf counters at 0 in /metrics: %s" % (variant, m0))
        alice = sipp_for(ctx, "ims_participant.xml", "alice", ims_keys(ctx, ALICE), duration_ms=10000)
        ctx.wait_for("alice's INVITE opened the session",
                     lambda: [s for s in ctx.rpc_ok("imconf.sessions").structs()
                              if s.get("uri") == IMS_SESSION and str(s.get("participants")) == "1"], timeout=8)
        ctx.sipp("reject_403.xml", "carol-403", keys=ims_keys(ctx, CAROL))
        ctx.sipp("reject_404.xml", "unknown-404", keys=ims_keys(ctx, ALICE, ruri="sip:nosuch@127.0.0.1"))
        watch = sipp_for(ctx, "ims_watch.xml", "watch", ims_keys(ctx, ALICE))
        ctx.wait_for("alice's subscription answered", lambda: [s for s in ctx.subscriptions()
                                                               if str(s.get("notify_in_flight")) == "0"], timeout=8)
        m1 = scrape(ctx, srv.http_port)
        d1 = moved(m0, m1, "subscribe_200", "subscribe_403", "subscribe_404", "notifies_full", "subscriptions",
                   "sessions")
        ctx.note("%s: after join + subscribe: %s" % (variant, d1))
        expect(d1 == {"subscribe_200": 1, "subscribe_403": 1, "subscribe_404": 1, "notifies_full": 1,
                      "subscriptions": 1, "sessions": 1},
               "%s: /metrics after alice joined and subscribed, carol 403, unknown 404: %s" % (variant, d1))
        # bob asks for privacy as a UE does: Privacy: id and an anonymous From (R78: his entity)
        bob = sipp_for(ctx, "ims_participant.xml", "bob", ims_keys(ctx, BOB, extra_hdr="Privacy: id",
                                                                    subscriber="sip:anonymous@anonymous.invalid"),
                       duration_ms=1500)
        ctx.sipp_wait(bob)
        ctx.wait_for("two partial NOTIFYs (bob appeared, bob left) answered",
                     lambda: scrape(ctx, srv.http_port).get("notifies_partial", 0) - m0.get("notifies_partial", 0) >= 2
                     and scrape(ctx, srv.http_port).get("notifies_in_flight") == 0, timeout=8)
        m2 = scrape(ctx, srv.http_port)
        ctx.sipp_wait(alice)
        ctx.sipp_wait(watch)
        ctx.wait_for("the session closed by the last BYE", lambda: scrape(ctx, srv.http_port).get("sessions") == 0)
        m3 = scrape(ctx, srv.http_port)
        d2 = moved(m0, m2, "notifies_partial", "notifies_terminated", "subscriptions")
        d3 = moved(m0, m3, "notifies_full", "notifies_partial", "notifies_terminated", "subscriptions", "sessions",
                   "notify_responses_2xx", "subscribe_200")
        ctx.note("%s: after bob: %s; at the end: %s" % (variant, d2, d3))
        expect(d2 == {"notifies_partial": 2, "notifies_terminated": 0, "subscriptions": 1},
               "%s: /metrics after bob joined and left: want 2 partial NOTIFYs, none terminated: %s" % (variant, d2))
        expect(d3 == {"notifies_full": 1, "notifies_partial": 2, "notifies_terminated": 1, "subscriptions": 0,
                      "sessions": 0, "notify_responses_2xx": 3, "subscribe_200": 1},
               "%s: /metrics at the end: want 1 full, 2 partial, 1 terminated NOTIFY, nothing left: %s" % (variant, d3))
        # what alice saw: herself; bob (anonymous: he asked for privacy) connected, then disconnected; the end
        notes = received_notifies(watch.paths["msg"])
        seen = [(m.get("subscription-state").split(";")[0].strip(), info.get("state"),
                 dict(info.get("users") or {})) for m, info in notes]
        ctx.note("%s: alice saw %s" % (variant, seen))
        expect(len(seen) == 4, "%s: want 4 NOTIFYs (full, bob in, bob out, end), got %s" % (variant, seen))
        expect(seen[0][:2] == ("active", "full") and seen[0][2] == {ALICE: "connected"},
               "%s: the first NOTIFY: want full state with alice connected: %s" % (variant, seen[0]))
        anon = [e for e in seen[1][2] if e != ALICE]
        expect(seen[1][1] == "partial" and len(anon) == 1 and "anonymous" in anon[0]
               and seen[1][2][anon[0]] == "connected",
               "%s: bob joined with Privacy: id: want a partial NOTIFY with one anonymous user connected: %s"
               % (variant, seen[1]))
        expect(seen[2][1] == "partial" and seen[2][2] == {anon[0]: "disconnected"},
               "%s: bob left: want a partial NOTIFY with %s disconnected: %s" % (variant, anon[0], seen[2]))
        expect(seen[3][0] == "terminated", "%s: alice left: want her subscription terminated: %s" % (variant, seen[3]))
        raw = Path(watch.paths["msg"]).read_bytes()
        expect(b"sip:bob@" not in raw, "%s: R79: bob's identity appears in a NOTIFY although he asked for privacy"
               % variant)
        expect(b">alice<" in raw, "%s: R49: alice's nick (her From display name) is not her display-text" % variant)
        complaints = srv.stop()
        expect(not complaints, "%s: stopping: %s" % (variant, complaints))


def dpkg_status(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, timeout=30)
    return r.stdout.decode().strip() if r.returncode == 0 else ""


def try_lock(fcntl, f):
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


class InstalledModuleServer(KamailioServer):
    """The test template with `loadmodule "imconf.so"`: no path, found in Kamailio's module dir."""

    def render(self):
        path = super().render()
        text = path.read_text()
        want = 'loadmodule "%s"' % self.ctx.opts.module
        if want not in text:
            raise TestFailure("harness: the rendered cfg has no line %s" % want)
        path.write_text(text.replace(want, 'loadmodule "imconf.so"'))
        return path


@test("deb_install_subscribe", "issue 8, 13 (make deb, dpkg -i; or make install; loadmodule \"imconf.so\")",
      standin="skip")
def t_deb(ctx):
    """For the Kamailio that `make build` targets (scripts/kamailio_target.py; KAMAILIO_PREFIX,
    KAMAILIO_BIN), when its binary belongs to the Debian package kamailio:
    packaging/build-deb.sh builds kamailio-imconf-modules_<version>_<arch>.deb from the module
    under test: its control fields (Depends kamailio (= the version of that package), Suggests)
    and files (imconf.so in the target's module dir, README and examples under
    /usr/share/doc/<package>/). `dpkg -i` installs it; Kamailio starts with `loadmodule "imconf.so"`
    (no path), a session is opened over RPC and alice's SUBSCRIBE gets its 200 and full NOTIFY; the
    installed example imconf-ims.cfg passes `kamailio -c` with its default module path. `dpkg -r`
    removes the package afterwards, whatever happened (a cleanup), and the module file is gone.
    A target built from source (no Debian package) takes t_install instead."""
    target = H.kamailio_target()
    same = (Path(target["bin"]).resolve() == Path(H.KAMAILIO).resolve()
            and Path(target["moddir"]).resolve() == Path(H.MPATH).resolve())
    if not same:
        raise H.Skip("the Kamailio under test (%s, modules %s) is not the build target (%s, modules %s) that "
                     "make deb / make install are for: choose it with KAMAILIO_PREFIX or KAMAILIO_BIN"
                     % (H.KAMAILIO, H.MPATH, target["bin"], target["moddir"]))
    if not target["deb_version"]:
        return t_install(ctx, target)
    if os.geteuid() != 0:
        raise H.Skip("needs root for dpkg -i / dpkg -r")
    deb_test_lock(ctx)
    before = dpkg_status(PKG)
    if "installed" in before and "not-installed" not in before:
        raise H.Skip("%s is already installed (%s): not touching it" % (PKG, before))
    r = subprocess.run([str(ROOT / "packaging" / "build-deb.sh"), "--module", str(ctx.opts.module),
                        "--out", str(ctx.rundir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = r.stdout.decode("utf-8", "replace").strip()
    expect(r.returncode == 0, "packaging/build-deb.sh failed:\n%s" % out)
    deb = Path(out.splitlines()[-1])
    kver = target["deb_version"]
    expect(re.match(r"^%s_[0-9][^_]*_[a-z0-9]+\.deb$" % PKG, deb.name), "package file name: %s" % deb.name)
    info = subprocess.run(["dpkg-deb", "-f", str(deb)], stdout=subprocess.PIPE, timeout=30).stdout.decode()
    ctx.note("control:\n" + info)
    fields = dict(re.findall(r"(?m)^([A-Za-z-]+): (.*)$", info))
    expect(fields.get("Package") == PKG, "Package: %s" % fields.get("Package"))
    expect(re.search(r"(^|, )kamailio \(= %s\)(,|$)" % re.escape(kver), fields.get("Depends", "")),
           "Depends must pin kamailio (= %s): %s" % (kver, fields.get("Depends")))
    suggests = fields.get("Suggests", "")
    expect("kamailio-sqlite-modules (= %s)" % kver in suggests and "kamailio-lua-modules (= %s)" % kver in suggests,
           "Suggests: %s" % suggests)
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], stdout=subprocess.PIPE, timeout=30).stdout.decode()
    files = set(re.findall(r"\s\./(\S+)$", listing, re.M))
    so = Path(target["moddir"]) / "imconf.so"
    doc = "usr/share/doc/%s/" % PKG
    for f in [str(so)[1:], doc + "README", doc + "imconf.md", doc + "copyright", doc + "examples/imconf.cfg",
              doc + "examples/imconf-ims.cfg", doc + "examples/imconf-ims-kemi.cfg", doc + "examples/imconf-ims.lua",
              doc + "sipp/ims_participant.xml", doc + "sipp/ims_watch.xml", doc + "operator-testing.md",
              "usr/share/doc/kamailio/modules/README.imconf.gz"]:
        expect(f in files, "the package lacks %s:\n%s" % (f, listing))
    expect(not so.exists(), "%s exists before the install" % so)
    # from here on the package is removed at the end whatever happens (after the servers stopped)

    def remove():
        rr = subprocess.run(["dpkg", "-r", PKG], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        ctx.note("dpkg -r: %s" % rr.stdout.decode("utf-8", "replace").strip())
        left = dpkg_status(PKG)
        if rr.returncode != 0 or so.exists() or ("installed" in left and "not-installed" not in left):
            raise RuntimeError("dpkg -r %s: exit %s, status %r, %s %s" % (
                PKG, rr.returncode, left, so, "still there" if so.exists() else "gone"))
    ctx.cleanups.append(remove)
    try:
        installed_checks(ctx, deb, so, doc)
    except (KeyboardInterrupt, SystemExit):
        # run_test's cleanups do not run then: stop our Kamailio and remove the package here
        ctx.stop_servers()
        ctx.cleanups.remove(remove)
        remove()
        raise


def deb_test_lock(ctx):
    """Two suites at once (two engineers) must not install and remove the module under each other:
    one at a time, from the checks before the install until after the removal (the lock is
    released by the cleanups)."""
    import fcntl
    lock = open(os.path.join(tempfile.gettempdir(), "imconf-deb-test.lock"), "w")
    ctx.cleanups.append(lock.close)
    ctx.wait_for("the deb test lock (another suite is installing the package)",
                 lambda: try_lock(fcntl, lock), timeout=180, interval=0.5)


# Only Kamailio builds under this directory (scripts/kamailio-build.sh's throwaway trees) get a real
# `make install` from the test; any other installation is left alone.
THROWAWAY_KAMAILIO = Path("/var/cache/imconf-kamailio")


def make_install(ctx, destdir):
    """`make install` of the module under test for the target in the environment, without building
    it again: `make -o build install MODULE=<module> DESTDIR=<destdir>` (docs/packaging.md)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DESTDIR")}
    r = subprocess.run(["make", "--no-print-directory", "-o", "build", "install", "MODULE=%s" % ctx.opts.module,
                        "DESTDIR=%s" % destdir], cwd=str(ROOT), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=180)
    out = r.stdout.decode("utf-8", "replace").strip()
    ctx.note("make install DESTDIR=%s: exit %d: %s" % (destdir, r.returncode, out))
    return r.returncode, out


def t_install(ctx, target):
    """deb_install_subscribe for a Kamailio that is not from a Debian package (built from source):
    build-deb.sh refuses with one line pointing to `make install`; `make install DESTDIR=<tmp>`
    puts the module at <tmp><module dir>/imconf.so (0644); then, only for a throwaway Kamailio
    under /var/cache/imconf-kamailio, a real `make install` into its module dir, Kamailio with
    `loadmodule "imconf.so"` and alice's subscription as with the package, and the shipped
    imconf-ims.cfg passes `kamailio -c` loading it by name; a cleanup removes the installed file
    whatever happened."""
    r = subprocess.run([str(ROOT / "packaging" / "build-deb.sh"), "--module", str(ctx.opts.module),
                        "--out", str(ctx.rundir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = r.stdout.decode("utf-8", "replace").strip()
    ctx.note("build-deb.sh: exit %d: %s" % (r.returncode, out))
    expect(r.returncode != 0, "build-deb.sh built a package for a Kamailio that is no Debian package:\n%s" % out)
    expect(len(out.splitlines()) == 1 and "not from the Debian package kamailio" in out and "make install" in out,
           "build-deb.sh must refuse with one line pointing to make install:\n%s" % out)
    expect(not list(ctx.rundir.glob("*.deb")), "build-deb.sh refused but left a package")
    built = Path(ctx.opts.module).read_bytes()
    # staged: DESTDIR
    stage = ctx.rundir / "destdir"
    staged = Path(str(stage) + target["moddir"]) / "imconf.so"
    rc, out = make_install(ctx, stage)
    expect(rc == 0, "make install DESTDIR=%s failed:\n%s" % (stage, out))
    expect(staged.is_file() and staged.read_bytes() == built, "make install DESTDIR: no copy of %s at %s"
           % (ctx.opts.module, staged))
    expect(staged.stat().st_mode & 0o7777 == 0o644, "%s: mode %o, want 0644" % (staged, staged.stat().st_mode & 0o7777))
    expect(str(staged) in out, "make install does not say where the module went: %s" % out)
    # the real one, into the target's module dir: only a throwaway build of ours
    moddir = Path(target["moddir"])
    so = moddir / "imconf.so"
    if THROWAWAY_KAMAILIO not in moddir.resolve().parents:
        raise H.Skip("build-deb.sh refusal and make install DESTDIR= passed; not installing into %s (only into "
                     "a throwaway Kamailio under %s)" % (moddir, THROWAWAY_KAMAILIO))
    if not os.access(str(moddir), os.W_OK):
        raise H.Skip("build-deb.sh refusal and make install DESTDIR= passed; %s is not writable" % moddir)
    deb_test_lock(ctx)
    if so.exists():
        raise H.Skip("%s exists already (installed by someone else): not touching it" % so)

    def remove():
        if so.exists():
            so.unlink()
        ctx.note("removed %s" % so)
    ctx.cleanups.append(remove)
    try:
        rc, out = make_install(ctx, "")
        expect(rc == 0, "make install failed:\n%s" % out)
        expect(so.is_file() and so.read_bytes() == built and str(so) in out,
               "make install: no copy of %s at %s: %s" % (ctx.opts.module, so, out))
        installed_subscribe(ctx, ROOT / "kamailio-cfg" / "imconf-ims.cfg", ["-L", H.MPATH])
    except (KeyboardInterrupt, SystemExit):
        ctx.stop_servers()
        ctx.cleanups.remove(remove)
        remove()
        raise


def installed_checks(ctx, deb, so, doc):
    """deb_install_subscribe, once the package is to be removed whatever happens."""
    r = subprocess.run(["dpkg", "-i", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    ctx.note("dpkg -i: %s" % r.stdout.decode("utf-8", "replace").strip())
    expect(r.returncode == 0, "dpkg -i failed: %s" % r.stdout.decode("utf-8", "replace"))
    expect(so.exists() and dpkg_status(PKG) == "install ok installed", "after dpkg -i: %s, %s" % (so, dpkg_status(PKG)))
    # the plain-text README in the shape of Kamailio's module READMEs (packaging/md2txt.py)
    readme = (Path("/") / doc / "README").read_text()
    for section in ("1. Overview", "2. Dependencies", "3. Parameters", "3.1. server_contact (str)", "4. Functions",
                    "imconf_participant_extra(", "5. RPC Commands", "6. Statistics", "Example 1.1. Set server_contact"):
        expect(section in readme, "the installed README lacks %r" % section)
    # the installed example with its default module path (mpath, "imconf.so")
    installed_subscribe(ctx, Path("/") / doc / "examples" / "imconf-ims.cfg", [])


def installed_subscribe(ctx, example, kam_args):
    """With imconf.so in the module dir: Kamailio with `loadmodule "imconf.so"` (the test template
    otherwise), a session over RPC and alice's subscription (200, full NOTIFY, unsubscribe); then
    `kamailio -c` of the example cfg, which loads "imconf.so" by name (kam_args: e.g. -L)."""
    srv = InstalledModuleServer(ctx)
    ctx.servers.append(srv)
    srv.start()
    ctx.server = srv
    expect('loadmodule "imconf.so"' in srv.cfg_path.read_text(), "the cfg does not load imconf.so by name")
    ctx.open_session()
    ctx.sipp("subscribe_unsubscribe.xml")
    r = subprocess.run([H.KAMAILIO, "-c", "-f", str(example)] + list(kam_args) + [
                        "-A", 'CTL_SOCK="unix:%s/ex.sock"' % ctx.rundir,
                        "-A", "LISTEN_SIP=udp:127.0.0.1:%d" % srv.port], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    text = r.stdout.decode("utf-8", "replace")
    expect(r.returncode == 0 and "config file ok" in text, "kamailio -c %s:\n%s" % (example, text[-1500:]))
