//! imconf: the notifier half of an OMA SIMPLE IM Controlling IM Function, as a Kamailio module.
//!
//! Layers (see docs/architecture.md): `core` is the sans-IO notifier (no Kamailio, no clock),
//! `kam` is the only place with `unsafe` (FFI to the C shim), `module` glues Kamailio events to core.
pub mod core;
