//! The checks of the settings' values: each names the key and the bad
//! value in its message.

use std::path::PathBuf;

use crate::telemetry::LogFormat;

pub(super) type Check<T> = fn(&'static str, &T) -> Result<(), String>;

pub(super) fn any<T>(_: &'static str, _: &T) -> Result<(), String> {
    Ok(())
}

pub(super) fn positive<T: Copy + Into<u64>>(key: &'static str, v: &T) -> Result<(), String> {
    if (*v).into() == 0 { Err(format!("{key} must be greater than 0")) } else { Ok(()) }
}

pub(super) fn positive_usize(key: &'static str, v: &usize) -> Result<(), String> {
    positive(key, &(*v as u64))
}

pub(super) fn h2_window(key: &'static str, v: &u32) -> Result<(), String> {
    match *v {
        65_535..=MAX_H2_WINDOW => Ok(()),
        _ => Err(format!(
            "{key} {v} must be at least 65535 (HTTP/2's minimum) and at most {MAX_H2_WINDOW} (its maximum)"
        )),
    }
}

/// HTTP/2's largest flow-control window, 2^31 - 1.
pub(super) const MAX_H2_WINDOW: u32 = (1 << 31) - 1;

// `Check<T>` takes `&T`: these check `String` and `PathBuf` settings.
#[allow(clippy::ptr_arg)]
pub(super) fn log_format(key: &'static str, v: &String) -> Result<(), String> {
    v.parse::<LogFormat>().map(|_| ()).map_err(|_| format!("{key} {v:?} is not text or json"))
}

// `Check<T>` takes `&T`: these check `String` and `PathBuf` settings.
#[allow(clippy::ptr_arg)]
pub(super) fn postgres_url(key: &'static str, v: &String) -> Result<(), String> {
    if v.starts_with("postgres://") || v.starts_with("postgresql://") {
        Ok(())
    } else {
        Err(format!("{key} {:?} is not a postgres:// URL", redact_url(v)))
    }
}

// `Check<T>` takes `&T`: these check `String` and `PathBuf` settings.
#[allow(clippy::ptr_arg)]
pub(super) fn http_url(key: &'static str, v: &String) -> Result<(), String> {
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(())
    } else {
        Err(format!("{key} {v:?} is not an http:// or https:// URL"))
    }
}

// `Check<T>` takes `&T`: these check `String` and `PathBuf` settings.
#[allow(clippy::ptr_arg)]
pub(super) fn origins(key: &'static str, v: &Vec<String>) -> Result<(), String> {
    match v.iter().find(|o| *o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/')) {
        Some(o) => Err(format!("{key}: {o:?} is not an origin (scheme://host[:port], no path) or *")),
        None => Ok(()),
    }
}

// `Check<T>` takes `&T`: these check `String` and `PathBuf` settings.
#[allow(clippy::ptr_arg)]
pub(super) fn file(key: &'static str, p: &PathBuf) -> Result<(), String> {
    if p.is_file() { Ok(()) } else { Err(format!("{key} {} does not exist or is not a file", p.display())) }
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
