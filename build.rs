//! Builds the C shim against Kamailio's headers with exactly the flags Debian's Kamailio 5.6.3
//! modules are built with (they are ABI, not just a version check), and runs bindgen over
//! c-shim/shim.h only. Only with feature `kamailio` (the module build); without it the crate is
//! the pure Rust core, testable with plain `cargo test`.
use std::env;
use std::fs;
use std::path::PathBuf;

/// Splits on whitespace outside double quotes, keeping the quotes: `-DNAME="kamailio"` must reach
/// the compiler as one argument that defines a string literal.
fn split_keep_quotes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn main() {
    println!("cargo:rerun-if-changed=c-shim");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=KAMAILIO_SRC");
    println!("cargo:rerun-if-env-changed=KAMAILIO_CDEFS");
    if env::var_os("CARGO_FEATURE_KAMAILIO").is_none() {
        return;
    }
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let kam_src = env::var_os("KAMAILIO_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".deps/kamailio-src"));
    let kam_inc = kam_src.join("src");
    assert!(
        kam_inc.join("core/sr_module.h").exists(),
        "Kamailio headers not found under {} (run `make deps`, or set KAMAILIO_SRC)",
        kam_inc.display()
    );
    let cdefs = env::var_os("KAMAILIO_CDEFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("c-shim/kamailio-5.6.3-debian12.cdefs"));
    let defs = fs::read_to_string(&cdefs).expect("read the cdefs file");

    let mut b = cc::Build::new();
    for f in [
        "shim_mod.c",
        "shim_sys.c",
        "shim_msg.c",
        "shim_tm.c",
        "shim_rpc.c",
        "shim_kemi.c",
        "shim_stats.c",
        "shim_db.c",
        "shim_dmq.c",
    ] {
        b.file(root.join("c-shim").join(f));
    }
    b.include(&kam_inc)
        .include(root.join("c-shim"))
        .define("MOD_NAME", "\"imconf\"")
        // Debian passes it in CFLAGS (CC_PMUTEX_OPTS), so printcdefs does not show it
        .define("KSR_PTHREAD_MUTEX_SHARED", None)
        .flag("-pthread")
        .flag("-std=gnu11")
        .warnings(false)
        // a missing include would otherwise link against a symbol Kamailio does not export
        .flag("-Werror=implicit-function-declaration");
    for tok in split_keep_quotes(&defs) {
        b.flag(&tok);
    }
    b.compile("imconf_shim");

    // shim_db.c calls Kamailio's libsrdb1, which DB-using modules link and find by runpath
    let kam_lib =
        env::var("KAMAILIO_LIBDIR").unwrap_or_else(|_| "/usr/lib/x86_64-linux-gnu/kamailio".into());
    println!("cargo:rustc-link-search=native={kam_lib}");
    println!("cargo:rustc-link-lib=dylib=srdb1");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-rpath,{kam_lib}");
    println!("cargo:rerun-if-env-changed=KAMAILIO_LIBDIR");

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
