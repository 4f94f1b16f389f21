//! imconf: the notifier half of an OMA SIMPLE IM Controlling IM Function, as a Kamailio module.
//!
//! Layers (docs/architecture.md): `core` is the sans-IO notifier (no Kamailio, no clock),
//! `kam` is the only place with `unsafe` (FFI to the C shim), `module` glues Kamailio events
//! to the core. `kam` and `module` exist only with feature `kamailio` (the cdylib build).
pub mod core;
#[cfg(feature = "kamailio")]
pub mod kam;
#[cfg(feature = "kamailio")]
pub(crate) mod module;

// The entry points C calls (kam/entry.rs), each handing its call to `module`.
#[cfg(feature = "kamailio")]
entry_points!(module);

// The script functions, KEMI functions and RPC commands, declared once.
#[cfg(feature = "kamailio")]
mod exports;
