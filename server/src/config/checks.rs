//! The server's own checks of settings' values (the shared ones are in
//! `eligibility::settings::checks`): each says what is wrong with the
//! value; the error adds the key and where the value came from.

/// HTTP/2's largest flow-control window, 2^31 - 1.
pub(super) const MAX_H2_WINDOW: u32 = (1 << 31) - 1;

pub(super) fn h2_window(v: &u32) -> Result<(), String> {
    match *v {
        65_535..=MAX_H2_WINDOW => Ok(()),
        _ => Err(format!("{v} must be at least 65535 (HTTP/2's minimum) and at most {MAX_H2_WINDOW} (its maximum)")),
    }
}

// `Check<T>` takes `&T`: these check `String` and `Vec` settings.
#[allow(clippy::ptr_arg)]
pub(super) fn postgres_url(v: &String) -> Result<(), String> {
    if v.starts_with("postgres://") || v.starts_with("postgresql://") {
        Ok(())
    } else {
        Err(format!("{:?} is not a postgres:// URL", redact_url(v)))
    }
}

#[allow(clippy::ptr_arg)]
pub(super) fn origins(v: &Vec<String>) -> Result<(), String> {
    match v.iter().find(|o| *o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/')) {
        Some(o) => Err(format!("{o:?} is not an origin (scheme://host[:port], no path) or *")),
        None => Ok(()),
    }
}

/// A URL with its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_owned() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}
