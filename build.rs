//! Builds the C shim against the headers of the Kamailio imconf targets, with exactly the
//! defines that Kamailio was built with (they are ABI, not just a version check), and runs bindgen
//! over c-shim/shim.h only. scripts/kamailio_target.py derives the target (KAMAILIO_PREFIX,
//! KAMAILIO_BIN, KAMAILIO_SRC; default: Debian's packaged Kamailio and the headers `make deps`
//! unpacks) and its defines from the binary itself, and refuses a target whose headers and binary
//! disagree. Only with feature `kamailio` (the module build); without it the crate is the pure Rust
//! core, testable with plain `cargo test`.
use std::env;
use std::path::PathBuf;
use std::process::Command;

/// What scripts/kamailio_target.py says of the target: `key=value` lines.
struct Target {
    src: PathBuf,
    bin: String,
    srdb1_dir: String,
    cdefs: Vec<String>,
}

fn derive_target(root: &std::path::Path) -> Target {
    let out = Command::new("python3")
        .arg(root.join("scripts/kamailio_target.py"))
        .arg("build")
        .output()
        .expect("run python3 scripts/kamailio_target.py");
    if !out.status.success() {
        // its one line says why (no binary, no headers, versions differ, flags do not match)
        panic!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8(out.stdout).expect("utf-8 from kamailio_target.py");
    let mut t = Target {
        src: PathBuf::new(),
        bin: String::new(),
        srdb1_dir: String::new(),
        cdefs: Vec::new(),
    };
    for line in text.lines() {
        match line.split_once('=') {
            Some(("src", v)) => t.src = PathBuf::from(v),
            Some(("bin", v)) => t.bin = v.to_string(),
            Some(("srdb1_dir", v)) => t.srdb1_dir = v.to_string(),
            Some(("cdef", v)) => t.cdefs.push(v.to_string()),
            _ => {}
        }
    }
    t
}

fn main() {
    println!("cargo:rerun-if-changed=c-shim");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=scripts/kamailio_target.py");
    for var in [
        "KAMAILIO_PREFIX",
        "KAMAILIO_BIN",
        "KAMAILIO_SRC",
        "KAMAILIO_MODULES",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if env::var_os("CARGO_FEATURE_KAMAILIO").is_none() {
        return;
    }
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let target = derive_target(&root);
    // a reinstalled or rebuilt Kamailio is a new target
    println!("cargo:rerun-if-changed={}", target.bin);
    let kam_inc = target.src.join("src");

    let mut b = cc::Build::new();
    for f in [
        "shim_mod.c",
        "shim_ver.c",
        "shim_sys.c",
        "shim_msg.c",
        "shim_tm.c",
        "shim_rpc.c",
        "shim_kemi.c",
        "shim_layout.c",
        "shim_stats.c",
        "shim_db.c",
        "shim_fanout.c",
        "shim_dmq.c",
    ] {
        b.file(root.join("c-shim").join(f));
    }
    b.include(&kam_inc)
        .include(root.join("c-shim"))
        .define("MOD_NAME", "\"imconf\"")
        .flag("-pthread")
        .flag("-std=gnu11")
        .warnings(false)
        // a missing include would otherwise link against a symbol Kamailio does not export; a
        // callback or member whose type changed between Kamailio versions is an ABI break, not
        // a warning (scripts/shim_compile_check.py uses the same flags)
        .flag("-Werror=implicit-function-declaration")
        .flag("-Werror=incompatible-pointer-types")
        .flag("-Werror=int-conversion");
    for tok in &target.cdefs {
        b.flag(tok);
    }
    b.compile("imconf_shim");

    // shim_db.c calls Kamailio's srdb1: up to 5.8 a library beside the modules (linked, found by
    // runpath, as DB-using modules do); from 6.0 part of the kamailio binary (nothing to link)
    if !target.srdb1_dir.is_empty() {
        let dir = &target.srdb1_dir;
        println!("cargo:rustc-link-search=native={dir}");
        println!("cargo:rustc-link-lib=dylib=srdb1");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-rpath,{dir}");
    }

    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    bindgen::Builder::default()
        .header(root.join("c-shim/shim.h").to_string_lossy())
        .allowlist_function("shim_.*")
        .allowlist_type("shim_.*")
        .allowlist_var("shim_.*|SHIM_.*")
        .blocklist_function("rs_.*")
        .derive_default(true)
        .layout_tests(true)
        .generate()
        .expect("bindgen on c-shim/shim.h")
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");
}
