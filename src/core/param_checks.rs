//! The checks of raw module parameter values, as Kamailio stored them (ints and strings):
//! kam/params.rs only reads them out of C and calls these. Each refusal names the parameter and
//! says why (docs/interface.md); the start-up then stops with that line.
use super::config::BadParam;

fn bad(name: &'static str, why: String) -> BadParam {
    BadParam { name, why }
}

pub fn non_negative(name: &'static str, v: i32) -> Result<u32, BadParam> {
    u32::try_from(v).map_err(|_| bad(name, format!("must not be negative (got {v})")))
}

/// 0 or 1.
pub fn flag(name: &'static str, v: i32) -> Result<bool, BadParam> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(bad(name, format!("must be 0 or 1 (got {v})"))),
    }
}

pub fn at_least(name: &'static str, v: i32, min: u32) -> Result<u32, BadParam> {
    let v = non_negative(name, v)?;
    if v < min {
        return Err(bad(name, format!("must be at least {min}")));
    }
    Ok(v)
}

pub fn between(name: &'static str, v: i32, min: u32, max: u32) -> Result<u32, BadParam> {
    let v = non_negative(name, v)?;
    if !(min..=max).contains(&v) {
        return Err(bad(
            name,
            format!("must be between {min} and {max} (got {v})"),
        ));
    }
    Ok(v)
}

/// R50 `endpoint_entity`: `user` (default) or `contact`; true for `contact`.
pub fn endpoint_entity(v: Option<&str>) -> Result<bool, BadParam> {
    match v {
        None | Some("user") => Ok(false),
        Some("contact") => Ok(true),
        Some(other) => Err(bad(
            "endpoint_entity",
            format!("must be user or contact (got {other})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_parameter_and_say_why() {
        let why = |r: Result<u32, BadParam>| r.unwrap_err().to_string();
        assert_eq!(
            why(non_negative("min_expires", -5)),
            "modparam \"min_expires\": must not be negative (got -5)"
        );
        assert_eq!(
            why(between("hash_slots", 5000, 1, 4096)),
            "modparam \"hash_slots\": must be between 1 and 4096 (got 5000)"
        );
        assert_eq!(
            why(at_least("max_inflight_notifies", 0, 1)),
            "modparam \"max_inflight_notifies\": must be at least 1"
        );
        assert_eq!(
            why(between("timer_interval_ms", -1, 10, 1000)),
            "modparam \"timer_interval_ms\": must not be negative (got -1)"
        );
        assert!(flag("rcs_compat", 2).is_err());
        assert!(endpoint_entity(Some("gruu")).is_err());
    }

    #[test]
    fn good_values_pass_through() {
        assert_eq!(between("hash_slots", 64, 1, 4096), Ok(64));
        assert_eq!(at_least("db_flush_interval_ms", 1, 1), Ok(1));
        assert_eq!(flag("enable_dmq", 1), Ok(true));
        assert_eq!(endpoint_entity(None), Ok(false));
        assert_eq!(endpoint_entity(Some("contact")), Ok(true));
    }
}
