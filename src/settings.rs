//! One settings system for the service's processes (feature `process`):
//! the server and the relay declare their settings with [`settings!`](crate::settings!),
//! once each, and every setting becomes a flag (`--key-name`), an
//! environment variable (the process's prefix and the key in capitals), a
//! key of the TOML file given by `--config`, a default, a check, and a
//! line of the effective configuration. Precedence: flags > environment >
//! file > defaults. A bad value stops the process at start with the key,
//! the reason and where the value came from:
//! `invalid max_batch: must be greater than 0 (from --max-batch or ELIGIBILITY_MAX_BATCH)`.
//!
//! The macro expands in the declaring crate and derives `clap::Parser`
//! and `serde::{Deserialize, Serialize}` there: that crate depends on
//! `clap` (features `derive`, `env`), `serde` and `toml`.

use std::{
    fmt,
    path::{Path, PathBuf},
};

/// Where a setting's value came from (named in errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The command line or the environment.
    FlagOrEnv {
        /// The setting's key.
        key: &'static str,
        /// The process's environment prefix, e.g. `ELIGIBILITY_`.
        prefix: &'static str,
    },
    /// The configuration file.
    File(PathBuf),
    /// The built-in default.
    Default,
    /// Several settings together (e.g. TLS's certificate and key).
    Together,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::FlagOrEnv { key, prefix } => {
                write!(f, "from --{} or {prefix}{}", key.replace('_', "-"), key.to_ascii_uppercase())
            }
            Source::File(p) => write!(f, "from the config file {}", p.display()),
            Source::Default => f.write_str("the default"),
            Source::Together => f.write_str("settings that go together"),
        }
    }
}

impl Source {
    /// The source of a value given here (`flags`: by a flag or the
    /// environment), or else in the file, or else the default.
    pub fn pick(key: &'static str, prefix: &'static str, flags: bool, file: bool, path: Option<&Path>) -> Source {
        match (flags, file, path) {
            (true, _, _) => Source::FlagOrEnv { key, prefix },
            (false, true, Some(p)) => Source::File(p.to_owned()),
            _ => Source::Default,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting's value is wrong.
    #[error("invalid {key}: {message} ({from})")]
    Invalid {
        /// The key (`webhook[0].url` inside a table of the file).
        key: String,
        /// Where the value came from.
        from: Source,
        /// What is wrong, with the value.
        message: String,
    },
    /// A file cannot be read or parsed.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// A wrong value of `key`.
    pub fn invalid(key: impl Into<String>, from: Source, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { key: key.into(), from, message: message.into() }
    }
}

/// A setting's check: `Err` says what is wrong with the value (the error
/// adds the key and the source).
pub type Check<T> = fn(&T) -> Result<(), String>;

/// The checks several processes use.
pub mod checks {
    use std::path::PathBuf;

    /// Any value.
    pub fn any<T>(_: &T) -> Result<(), String> {
        Ok(())
    }

    /// A count, size or duration: zero is refused.
    pub fn positive<T: Copy + PartialEq + Default + std::fmt::Display>(v: &T) -> Result<(), String> {
        if *v == T::default() { Err("must be greater than 0".to_owned()) } else { Ok(()) }
    }

    // `Check<T>` takes `&T`: these check `String` and `PathBuf` settings.
    /// `text` or `json`.
    #[allow(clippy::ptr_arg)]
    pub fn log_format(v: &String) -> Result<(), String> {
        match v.as_str() {
            "text" | "json" => Ok(()),
            _ => Err(format!("{v:?} is not text or json")),
        }
    }

    /// An `http://` or `https://` URL.
    #[allow(clippy::ptr_arg)]
    pub fn http_url(v: &String) -> Result<(), String> {
        if v.starts_with("http://") || v.starts_with("https://") {
            Ok(())
        } else {
            Err(format!("{v:?} is not an http:// or https:// URL"))
        }
    }

    /// An existing file.
    #[allow(clippy::ptr_arg)]
    pub fn file(p: &PathBuf) -> Result<(), String> {
        if p.is_file() { Ok(()) } else { Err(format!("{} does not exist or is not a file", p.display())) }
    }
}

/// Reads a TOML configuration file.
pub fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::File { path: path.to_owned(), message: format!("cannot read config file: {e}") })?;
    toml::from_str(&text).map_err(|e| ConfigError::File { path: path.to_owned(), message: e.to_string() })
}

/// Takes `key` out of a file's table, read as its setting's type (an error
/// names the key and the file).
pub fn take<T: serde::de::DeserializeOwned>(
    table: &mut toml::Table,
    key: &'static str,
    path: &Path,
) -> Result<Option<T>, ConfigError> {
    table
        .remove(key)
        .map(|v| v.try_into::<T>())
        .transpose()
        .map_err(|e| ConfigError::invalid(key, Source::File(path.to_owned()), e.message().trim_end()))
}

/// Refuses a key of the file that no setting has.
pub fn no_unknown(table: &toml::Table, path: &Path, keys: &[&str]) -> Result<(), ConfigError> {
    match table.keys().next() {
        None => Ok(()),
        Some(unknown) => Err(ConfigError::File {
            path: path.to_owned(),
            message: format!("unknown key {unknown:?} (the keys are: {})", keys.join(", ")),
        }),
    }
}

/// The command line of a process's settings: each setting's environment
/// variable (`prefix` and the key in capitals) and its default in its help.
pub fn command(command: clap::Command, prefix: &str, keys: &[&str], defaults: &toml::Table) -> clap::Command {
    command.mut_args(|arg| {
        let id = arg.get_id().as_str().to_owned();
        if !keys.contains(&id.as_str()) {
            return arg;
        }
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let default = match defaults.get(&id) {
            Some(toml::Value::String(s)) => format!(" [default: {s}]"),
            Some(toml::Value::Array(a)) if a.is_empty() => " [default: none]".to_owned(),
            Some(v) => format!(" [default: {v}]"),
            None => " [default: off]".to_owned(),
        };
        // Built once at start: leaking gives clap the 'static strings it
        // keeps without its `string` feature.
        let env: &'static str = Box::leak(format!("{prefix}{}", id.to_ascii_uppercase()).into_boxed_str());
        let help: &'static str = Box::leak(format!("{help}{default}").into_boxed_str());
        arg.env(env).help(help)
    })
}

/// Declares a process's settings.
///
/// ```text
/// eligibility::settings! {
///     prefix = "ELIGIBILITY_";
///     /// doc and #[command(...)] attributes of the flags' struct
///     pub struct Settings { /* more fields: #[serde(skip)], e.g. `config` */ }
///     required {
///         /// Help line.
///         max_batch: usize = 1000, checks::positive;
///     }
///     optional {
///         /// Off unless given.
///         tokens_file: PathBuf, checks::file;
///     }
///     file_only {
///         /// Tables of the file only (`[[webhook]]`), as field = "key".
///         webhooks = "webhook": Vec<WebhookTable>;
///     }
/// }
/// ```
///
/// A setting's attributes go to its flag (`#[arg(value_delimiter = ',')]`,
/// `#[arg(hide_env_values = true)]`, `#[arg(num_args = 0..=1,
/// default_missing_value = "true")]` for a bare boolean flag). Generates
/// the struct (each setting an `Option`, as one source gives it),
/// `Effective` (each setting's value after precedence and checks),
/// `KEYS`, and `from_cli`, `from_table`, `load_file`, `merge`, `source`,
/// `defaults` on the struct.
#[macro_export]
macro_rules! settings {
    (
        prefix = $prefix:literal;
        $(#[$smeta:meta])*
        pub struct $name:ident { $($extra:tt)* }
        required {
            $( $(#[$rmeta:meta])* $rname:ident : $rty:ty = $default:expr, $check:expr; )*
        }
        optional {
            $( $(#[$ometa:meta])* $oname:ident : $oty:ty, $ocheck:expr; )*
        }
        file_only {
            $( $(#[$fmeta:meta])* $fname:ident = $fkey:literal : $fty:ty; )*
        }
    ) => {
        #[derive(clap::Parser, serde::Deserialize, serde::Serialize, Debug, Default, Clone)]
        #[serde(deny_unknown_fields)]
        $(#[$smeta])*
        pub struct $name {
            $( $(#[$rmeta])* #[arg(long)] pub $rname: Option<$rty>, )*
            $( $(#[$ometa])* #[arg(long)] pub $oname: Option<$oty>, )*
            $( $(#[$fmeta])* #[arg(skip)] #[serde(skip)] pub $fname: $fty, )*
            $($extra)*
        }

        /// Every setting's effective value (flags over environment over
        /// file over defaults, checked).
        #[derive(serde::Serialize, Debug, Clone)]
        pub struct Effective {
            $( #[allow(missing_docs)] pub $rname: $rty, )*
            $( #[allow(missing_docs)] #[serde(skip_serializing_if = "Option::is_none")] pub $oname: Option<$oty>, )*
            $( #[allow(missing_docs)] #[serde(skip)] pub $fname: $fty, )*
        }

        /// The keys of the settings (the file's keys; flags and environment
        /// variables are derived from them).
        pub const KEYS: &[&str] = &[$(stringify!($rname),)* $(stringify!($oname),)*];

        impl $name {
            /// The prefix of every setting's environment variable.
            pub const ENV_PREFIX: &'static str = $prefix;

            /// Parses the command line and the environment (exits with
            /// clap's message on a malformed command line).
            pub fn from_cli() -> $name {
                let command = $crate::settings::command(
                    <$name as clap::CommandFactory>::command(),
                    $prefix,
                    KEYS,
                    &$name::defaults(),
                );
                let matches = command.get_matches();
                <$name as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
            }

            /// The settings of a configuration file (`None`: no file).
            pub fn load_file(path: Option<&std::path::Path>) -> Result<$name, $crate::settings::ConfigError> {
                match path {
                    None => Ok($name::default()),
                    Some(path) => $name::from_table($crate::settings::read_file(path)?, path),
                }
            }

            /// The settings of a parsed file: each key read as its
            /// setting's type, so an error names the key and the file.
            pub fn from_table(
                mut table: toml::Table,
                path: &std::path::Path,
            ) -> Result<$name, $crate::settings::ConfigError> {
                let settings = $name {
                    $( $fname: $crate::settings::take(&mut table, $fkey, path)?.unwrap_or_default(), )*
                    $( $rname: $crate::settings::take(&mut table, stringify!($rname), path)?, )*
                    $( $oname: $crate::settings::take(&mut table, stringify!($oname), path)?, )*
                    ..$name::default()
                };
                let mut keys = KEYS.to_vec();
                $( if !keys.contains(&$fkey) { keys.push($fkey); } )*
                $crate::settings::no_unknown(&table, path, &keys)?;
                Ok(settings)
            }

            /// Where `key`'s value came from: given here (flags and
            /// environment), else in `file`, else the default.
            pub fn source(
                &self,
                file: &$name,
                file_path: Option<&std::path::Path>,
                key: &'static str,
            ) -> $crate::settings::Source {
                let (here, there) = match key {
                    $( stringify!($rname) => (self.$rname.is_some(), file.$rname.is_some()), )*
                    $( stringify!($oname) => (self.$oname.is_some(), file.$oname.is_some()), )*
                    _ => (false, file_path.is_some()),
                };
                $crate::settings::Source::pick(key, $prefix, here, there, file_path)
            }

            /// Flags and environment (self) over the file over the
            /// defaults; each value checked.
            pub fn merge(
                &self,
                file: &$name,
                file_path: Option<&std::path::Path>,
            ) -> Result<Effective, $crate::settings::ConfigError> {
                let effective = Effective {
                    $( $rname: self.$rname.clone().or_else(|| file.$rname.clone()).unwrap_or_else(|| $default), )*
                    $( $oname: self.$oname.clone().or_else(|| file.$oname.clone()), )*
                    $( $fname: file.$fname.clone(), )*
                };
                let invalid = |key: &'static str, message: String| {
                    $crate::settings::ConfigError::invalid(key, self.source(file, file_path, key), message)
                };
                $(
                    let check: $crate::settings::Check<$rty> = $check;
                    check(&effective.$rname).map_err(|m| invalid(stringify!($rname), m))?;
                )*
                $(
                    if let Some(v) = &effective.$oname {
                        let check: $crate::settings::Check<$oty> = $ocheck;
                        check(v).map_err(|m| invalid(stringify!($oname), m))?;
                    }
                )*
                Ok(effective)
            }

            /// The defaults as a table (settings off by default absent).
            pub fn defaults() -> toml::Table {
                let none = $name::default();
                let defaults = none.merge(&none, None).expect("the defaults are valid");
                toml::Table::try_from(&defaults).unwrap_or_default()
            }
        }
    };
}
