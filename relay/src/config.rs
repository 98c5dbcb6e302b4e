//! The relay's configuration: each key as a flag (`--nats-url`), an
//! environment variable (`ELIGIBILITY_RELAY_NATS_URL`) or a TOML key
//! (`nats_url`, in the file given by `--config`); flags beat the
//! environment, which beats the file, which beats the defaults. A bad
//! value stops the relay at start with the key and its source named.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{CommandFactory, FromArgMatches, Parser, parser::ValueSource};
use eligibility_client::{Country, ListId};
use serde::Deserialize;

use crate::sign::Secret;

/// Command-line flags (each also an environment variable).
#[derive(Parser, Debug, Default)]
#[command(
    name = "eligibility-relay",
    version,
    about = "Carries the eligibility change stream onto NATS JetStream and signed webhooks, exactly once in effect"
)]
pub struct Flags {
    /// TOML configuration file.
    #[arg(long, env = "ELIGIBILITY_RELAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// The eligibility server, e.g. http://127.0.0.1:50051 [default: http://127.0.0.1:50051].
    #[arg(long, env = "ELIGIBILITY_RELAY_SERVER")]
    server: Option<String>,
    /// Bearer token for the server (reader role suffices).
    #[arg(long, env = "ELIGIBILITY_RELAY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Directory for the webhook positions [default: ./relay-data].
    #[arg(long, env = "ELIGIBILITY_RELAY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// NATS server, e.g. nats://127.0.0.1:4222 (enables the JetStream sink).
    #[arg(long, env = "ELIGIBILITY_RELAY_NATS_URL")]
    nats_url: Option<String>,
    /// JetStream stream name [default: ELIGIBILITY].
    #[arg(long, env = "ELIGIBILITY_RELAY_NATS_STREAM")]
    nats_stream: Option<String>,
    /// Subject prefix; messages go to <prefix>.<list_id> [default: eligibility.changes].
    #[arg(long, env = "ELIGIBILITY_RELAY_SUBJECT_PREFIX")]
    subject_prefix: Option<String>,
    /// Message body: json (canonical proto3 JSON) or protobuf [default: json].
    #[arg(long, env = "ELIGIBILITY_RELAY_NATS_FORMAT")]
    nats_format: Option<String>,
    /// Replicas of the stream, if the relay creates it [default: 1].
    #[arg(long, env = "ELIGIBILITY_RELAY_NATS_REPLICAS")]
    nats_replicas: Option<usize>,
    /// JetStream duplicate window of the stream, if the relay creates it, ms [default: 120000].
    #[arg(long, env = "ELIGIBILITY_RELAY_NATS_DUPLICATE_WINDOW_MS")]
    nats_duplicate_window_ms: Option<u64>,
    /// Retention of the stream, if the relay creates it: limits, interest or workqueue [default: limits].
    #[arg(long, env = "ELIGIBILITY_RELAY_NATS_RETENTION")]
    nats_retention: Option<String>,
    /// A webhook endpoint (more, with their own filters, in the file's [[webhook]] tables).
    #[arg(long, env = "ELIGIBILITY_RELAY_WEBHOOK")]
    webhook: Option<String>,
    /// The --webhook endpoint's Standard Webhooks secret (whsec_...).
    #[arg(long, env = "ELIGIBILITY_RELAY_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Time for a webhook endpoint to answer, ms [default: 10000].
    #[arg(long, env = "ELIGIBILITY_RELAY_WEBHOOK_TIMEOUT_MS")]
    webhook_timeout_ms: Option<u64>,
    /// Longest wait between retries, ms [default: 60000].
    #[arg(long, env = "ELIGIBILITY_RELAY_MAX_BACKOFF_MS")]
    max_backoff_ms: Option<u64>,
    /// Only these lists (repeatable; comma-separated in the environment).
    #[arg(long = "list", env = "ELIGIBILITY_RELAY_LIST", value_delimiter = ',')]
    lists: Vec<String>,
    /// Only changes about these countries (repeatable).
    #[arg(long = "country", env = "ELIGIBILITY_RELAY_COUNTRY", value_delimiter = ',')]
    countries: Vec<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics and health at /healthz.
    #[arg(long, env = "ELIGIBILITY_RELAY_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "ELIGIBILITY_RELAY_LOG_FORMAT")]
    log_format: Option<String>,
    /// Log level or tracing filter [default: info].
    #[arg(long, env = "ELIGIBILITY_RELAY_LOG_LEVEL")]
    log_level: Option<String>,
}

/// The configuration file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct File {
    server: Option<String>,
    token: Option<String>,
    data_dir: Option<PathBuf>,
    nats_url: Option<String>,
    nats_stream: Option<String>,
    subject_prefix: Option<String>,
    nats_format: Option<String>,
    nats_replicas: Option<usize>,
    nats_duplicate_window_ms: Option<u64>,
    nats_retention: Option<String>,
    #[serde(default)]
    webhook: Vec<WebhookFile>,
    webhook_timeout_ms: Option<u64>,
    max_backoff_ms: Option<u64>,
    #[serde(default)]
    list: Vec<String>,
    #[serde(default)]
    country: Vec<String>,
    metrics_listen: Option<String>,
    log_format: Option<String>,
    log_level: Option<String>,
}

/// A `[[webhook]]` table.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct WebhookFile {
    name: Option<String>,
    url: String,
    secret: String,
    #[serde(default)]
    list: Vec<String>,
    #[serde(default)]
    country: Vec<String>,
}

/// Body of a NATS message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The changeset's canonical proto3 JSON.
    Json,
    /// The changeset's protobuf encoding.
    Protobuf,
}

/// What a sink forwards.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only these lists (empty: all).
    pub lists: Vec<ListId>,
    /// Only changes about these countries (empty: all).
    pub countries: Vec<Country>,
}

/// The JetStream sink.
#[derive(Clone, Debug)]
pub struct NatsConfig {
    /// Server URL.
    pub url: String,
    /// Stream name.
    pub stream: String,
    /// Subject prefix.
    pub prefix: String,
    /// Body format.
    pub format: Format,
    /// Replicas (when created).
    pub replicas: usize,
    /// Duplicate window (when created).
    pub duplicate_window: Duration,
    /// Retention (when created).
    pub retention: async_nats::jetstream::stream::RetentionPolicy,
}

/// One webhook endpoint.
#[derive(Clone, Debug)]
pub struct Webhook {
    /// Its name (its position file's name).
    pub name: String,
    /// Where to POST.
    pub url: url::Url,
    /// The signing secret.
    pub secret: Secret,
    /// What it receives.
    pub filter: Filter,
}

/// The relay's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The eligibility server.
    pub server: String,
    /// Its bearer token.
    pub token: Option<String>,
    /// Where positions are kept.
    pub data_dir: PathBuf,
    /// What every sink forwards at most.
    pub filter: Filter,
    /// The JetStream sink, if any.
    pub nats: Option<NatsConfig>,
    /// The webhook endpoints.
    pub webhooks: Vec<Webhook>,
    /// Time for an endpoint to answer.
    pub webhook_timeout: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
    /// Metrics and health endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// `text` or `json`.
    pub log_json: bool,
    /// Tracing filter.
    pub log_level: String,
}

/// A refused configuration: the key, where its value came from, why.
#[derive(Debug, thiserror::Error)]
#[error("invalid {key}: {message} (from {origin})")]
pub struct ConfigError {
    key: String,
    origin: String,
    message: String,
}

struct Sources<'a> {
    matches: &'a clap::ArgMatches,
    file: Option<String>,
}

impl Sources<'_> {
    /// Where `key`'s value came from (flag, environment or file).
    fn of(&self, key: &str, from_flags: bool) -> String {
        if from_flags {
            match self.matches.value_source(key) {
                Some(ValueSource::EnvVariable) => {
                    format!("the environment variable ELIGIBILITY_RELAY_{}", key.to_uppercase())
                }
                _ => format!("the flag --{}", key.replace('_', "-")),
            }
        } else {
            self.file.clone().unwrap_or_else(|| "the defaults".to_owned())
        }
    }
}

/// Reads the flags, the environment and the file.
pub fn load() -> Result<Config, ConfigError> {
    let matches = Flags::command().get_matches();
    let flags = Flags::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let file = match &flags.config {
        None => File::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                key: "config".into(),
                origin: "the flag --config".into(),
                message: format!("cannot read {}: {e}", path.display()),
            })?;
            toml::from_str(&text).map_err(|e| ConfigError {
                key: "config".into(),
                origin: format!("the config file {}", path.display()),
                message: e.message().to_owned(),
            })?
        }
    };
    let sources =
        Sources { matches: &matches, file: flags.config.as_ref().map(|p| format!("the config file {}", p.display())) };
    resolve(flags, file, &sources)
}

fn resolve(flags: Flags, file: File, src: &Sources<'_>) -> Result<Config, ConfigError> {
    // The value and its source, flag/env first.
    macro_rules! pick {
        ($key:ident) => {{
            let from_flags = flags.$key.is_some();
            (flags.$key.clone().or(file.$key.clone()), src.of(stringify!($key), from_flags))
        }};
    }
    let bad =
        |key: &str, source: &str, message: String| ConfigError { key: key.into(), origin: source.into(), message };

    let (server, s) = pick!(server);
    let server = server.unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    check_url(&server, &["http", "https"]).map_err(|m| bad("server", &s, m))?;

    let global = {
        let from_flags = !flags.lists.is_empty() || !flags.countries.is_empty();
        let (lists, countries) = if from_flags {
            (flags.lists.clone(), flags.countries.clone())
        } else {
            (file.list.clone(), file.country.clone())
        };
        filter(&lists, &countries).map_err(|(k, m)| bad(k, &src.of(k, from_flags), m))?
    };

    let (nats_url, s) = pick!(nats_url);
    let nats = match nats_url {
        None => None,
        Some(url) => {
            check_url(&url, &["nats", "tls"]).map_err(|m| bad("nats_url", &s, m))?;
            let (stream, s) = pick!(nats_stream);
            let stream = stream.unwrap_or_else(|| "ELIGIBILITY".to_owned());
            if stream.is_empty() || !stream.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(bad("nats_stream", &s, format!("{stream:?}: letters, digits, _ and - only")));
            }
            let (prefix, s) = pick!(subject_prefix);
            let prefix = prefix.unwrap_or_else(|| "eligibility.changes".to_owned());
            if prefix.is_empty() || prefix.split('.').any(|t| t.is_empty() || t.contains(['*', '>', ' '])) {
                return Err(bad(
                    "subject_prefix",
                    &s,
                    format!("{prefix:?} is not a subject prefix (tokens separated by dots, no wildcards)"),
                ));
            }
            let (format, s) = pick!(nats_format);
            let format = match format.as_deref().unwrap_or("json") {
                "json" => Format::Json,
                "protobuf" => Format::Protobuf,
                other => return Err(bad("nats_format", &s, format!("{other:?}: json or protobuf"))),
            };
            let (replicas, s) = pick!(nats_replicas);
            let replicas = replicas.unwrap_or(1);
            if !(1..=5).contains(&replicas) {
                return Err(bad("nats_replicas", &s, format!("{replicas}: 1 to 5")));
            }
            let (window, s) = pick!(nats_duplicate_window_ms);
            let window = window.unwrap_or(120_000);
            if window == 0 {
                return Err(bad("nats_duplicate_window_ms", &s, "must be greater than 0".into()));
            }
            let (retention, s) = pick!(nats_retention);
            use async_nats::jetstream::stream::RetentionPolicy;
            let retention = match retention.as_deref().unwrap_or("limits") {
                "limits" => RetentionPolicy::Limits,
                "interest" => RetentionPolicy::Interest,
                "workqueue" => RetentionPolicy::WorkQueue,
                other => return Err(bad("nats_retention", &s, format!("{other:?}: limits, interest or workqueue"))),
            };
            Some(NatsConfig {
                url,
                stream,
                prefix,
                format,
                replicas,
                duplicate_window: Duration::from_millis(window),
                retention,
            })
        }
    };

    let mut webhooks = Vec::new();
    if let Some(url) = &flags.webhook {
        let s = src.of("webhook", true);
        let parsed = check_url(url, &["http", "https"]).map_err(|m| bad("webhook", &s, m))?;
        let (secret, s) = (flags.webhook_secret.clone(), src.of("webhook_secret", true));
        let secret = secret.ok_or_else(|| bad("webhook_secret", &s, "required with --webhook".into()))?;
        let secret = Secret::parse(&secret).map_err(|m| bad("webhook_secret", &s, m))?;
        webhooks.push(Webhook { name: "default".into(), url: parsed, secret, filter: global.clone() });
    }
    for (i, w) in file.webhook.iter().enumerate() {
        let s = src.of("webhook", false);
        let key = |k: &str| format!("webhook[{i}].{k}");
        let url = check_url(&w.url, &["http", "https"]).map_err(|m| bad(&key("url"), &s, m))?;
        let secret = Secret::parse(&w.secret).map_err(|m| bad(&key("secret"), &s, m))?;
        let name = w.name.clone().unwrap_or_else(|| format!("webhook-{i}"));
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(bad(&key("name"), &s, format!("{name:?}: letters, digits, _ and - only")));
        }
        if webhooks.iter().any(|o: &Webhook| o.name == name) {
            return Err(bad(&key("name"), &s, format!("{name:?} is used twice")));
        }
        let own = filter(&w.list, &w.country).map_err(|(k, m)| bad(&key(k), &s, m))?;
        webhooks.push(Webhook { name, url, secret, filter: narrow(&global, own) });
    }
    if nats.is_none() && webhooks.is_empty() {
        return Err(bad(
            "nats_url",
            "the defaults",
            "nothing to relay to: set --nats-url, --webhook or a [[webhook]] table".into(),
        ));
    }

    let (timeout, s) = pick!(webhook_timeout_ms);
    let timeout = timeout.unwrap_or(10_000);
    if timeout == 0 {
        return Err(bad("webhook_timeout_ms", &s, "must be greater than 0".into()));
    }
    let (backoff, s) = pick!(max_backoff_ms);
    let backoff = backoff.unwrap_or(60_000);
    if backoff < 100 {
        return Err(bad("max_backoff_ms", &s, "must be at least 100".into()));
    }
    let (metrics, s) = pick!(metrics_listen);
    let metrics_listen = metrics
        .map(|m| m.parse::<SocketAddr>().map_err(|e| bad("metrics_listen", &s, format!("{m:?}: {e}"))))
        .transpose()?;
    let (format, s) = pick!(log_format);
    let log_json = match format.as_deref().unwrap_or("text") {
        "text" => false,
        "json" => true,
        other => return Err(bad("log_format", &s, format!("{other:?}: text or json"))),
    };
    let (level, _) = pick!(log_level);
    let (data_dir, _) = pick!(data_dir);
    let (token, _) = pick!(token);
    Ok(Config {
        server,
        token,
        data_dir: data_dir.unwrap_or_else(|| PathBuf::from("./relay-data")),
        filter: global,
        nats,
        webhooks,
        webhook_timeout: Duration::from_millis(timeout),
        max_backoff: Duration::from_millis(backoff),
        metrics_listen,
        log_json,
        log_level: level.unwrap_or_else(|| "info".to_owned()),
    })
}

fn check_url(s: &str, schemes: &[&str]) -> Result<url::Url, String> {
    let u = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !schemes.contains(&u.scheme()) {
        return Err(format!("{s:?}: the scheme must be {}", schemes.join(" or ")));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host"));
    }
    Ok(u)
}

fn filter(lists: &[String], countries: &[String]) -> Result<Filter, (&'static str, String)> {
    Ok(Filter {
        lists: lists
            .iter()
            .map(|l| ListId::parse(l).map_err(|e| ("list", format!("{l:?}: {e}"))))
            .collect::<Result<_, _>>()?,
        countries: countries
            .iter()
            .map(|c| Country::parse(c).map_err(|e| ("country", format!("{c:?}: {e}"))))
            .collect::<Result<_, _>>()?,
    })
}

/// An endpoint's own filter within the global one (an empty side takes
/// the global side).
fn narrow(global: &Filter, own: Filter) -> Filter {
    Filter {
        lists: if own.lists.is_empty() { global.lists.clone() } else { own.lists },
        countries: if own.countries.is_empty() { global.countries.clone() } else { own.countries },
    }
}
