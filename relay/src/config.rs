//! The relay's configuration, on the settings system the server uses
//! ([`eligibility::settings!`]): each key as a flag (`--nats-url`), an
//! environment variable (`ELIGIBILITY_RELAY_NATS_URL`) or a TOML key
//! (`nats_url`, in the file given by `--config`); flags beat the
//! environment, which beats the file, which beats the defaults. A bad
//! value stops the relay at start with the key and its source named.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use eligibility::settings::{
    ConfigError, Source,
    checks::{any, log_format, positive},
};
use eligibility_client::{Country, ListId};
use serde::{Deserialize, Serialize};

use crate::sign::Secret;

eligibility::settings! {
    prefix = "ELIGIBILITY_RELAY_";
    /// Every setting as one source gives it (`None`: not given there).
    #[command(
        name = "eligibility-relay",
        version,
        about = "Carries the eligibility change stream onto NATS JetStream and signed webhooks, exactly once in effect"
    )]
    pub struct Settings {
        /// TOML configuration file.
        #[arg(long, env = "ELIGIBILITY_RELAY_CONFIG")]
        #[serde(skip)]
        pub config: Option<PathBuf>,
    }
    required {
        /// The eligibility server, e.g. http://127.0.0.1:50051.
        server: String = "http://127.0.0.1:50051".to_owned(), http_or_https;
        /// Directory for the webhook positions.
        data_dir: PathBuf = PathBuf::from("./relay-data"), any;
        /// JetStream stream name.
        nats_stream: String = "ELIGIBILITY".to_owned(), stream_name;
        /// Subject prefix; messages go to <prefix>.<list_id>.
        subject_prefix: String = "eligibility.changes".to_owned(), subject_prefix;
        /// Message body: json (canonical proto3 JSON) or protobuf.
        nats_format: String = "json".to_owned(), nats_format;
        /// Replicas of the stream, if the relay creates it (1 to 5).
        nats_replicas: usize = 1, replicas;
        /// JetStream duplicate window of the stream, if the relay creates it, ms.
        nats_duplicate_window_ms: u64 = 120_000, positive;
        /// Retention of the stream, if the relay creates it: limits, interest or workqueue.
        nats_retention: String = "limits".to_owned(), retention;
        /// Time for a webhook endpoint to answer, ms.
        webhook_timeout_ms: u64 = 10_000, positive;
        /// Longest wait between retries, ms.
        max_backoff_ms: u64 = 60_000, backoff;
        /// Only these lists (repeatable; comma-separated in the environment).
        #[arg(value_delimiter = ',')]
        list: Vec<String> = Vec::new(), lists;
        /// Only changes about these countries (repeatable).
        #[arg(value_delimiter = ',')]
        country: Vec<String> = Vec::new(), countries;
        /// Log format: text or json.
        log_format: String = "text".to_owned(), log_format;
        /// Log level or tracing filter.
        log_level: String = "info".to_owned(), any;
    }
    optional {
        /// Bearer token for the server (reader role suffices).
        #[arg(hide_env_values = true)]
        token: String, any;
        /// NATS server, e.g. nats://127.0.0.1:4222 (enables the JetStream sink).
        nats_url: String, nats_url;
        /// A webhook endpoint (more, with their own filters, in the file's [[webhook]] tables).
        webhook: String, http_or_https;
        /// The --webhook endpoint's Standard Webhooks secret (whsec_...).
        #[arg(hide_env_values = true)]
        webhook_secret: String, secret;
        /// Serve Prometheus metrics at http://ADDR/metrics and health at /healthz.
        metrics_listen: SocketAddr, any;
    }
    file_only {
        /// The file's `[[webhook]]` tables.
        webhook_tables = "webhook": Vec<WebhookFile>;
    }
}

/// A `[[webhook]]` table of the file.
#[derive(Deserialize, Serialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
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

/// Reads the flags, the environment and the file.
pub fn load() -> Result<Config, ConfigError> {
    let flags = Settings::from_cli();
    let file = Settings::load_file(flags.config.as_deref())?;
    resolve(&flags, &file)
}

/// Flags and environment (`flags`) over the file over the defaults, into
/// the relay's configuration; what concerns several settings is checked here.
fn resolve(flags: &Settings, file: &Settings) -> Result<Config, ConfigError> {
    let path = flags.config.as_deref();
    let e = flags.merge(file, path)?;
    let from = |key| flags.source(file, path, key);
    let global = filter(&e.list, &e.country).map_err(|(k, m)| ConfigError::invalid(k, from(k), m))?;
    let nats = e.nats_url.as_ref().map(|url| NatsConfig {
        url: url.clone(),
        stream: e.nats_stream.clone(),
        prefix: e.subject_prefix.clone(),
        format: if e.nats_format == "protobuf" { Format::Protobuf } else { Format::Json },
        replicas: e.nats_replicas,
        duplicate_window: Duration::from_millis(e.nats_duplicate_window_ms),
        retention: retention_policy(&e.nats_retention).expect("checked by merge"),
    });

    let mut webhooks = Vec::new();
    if let Some(url) = &e.webhook {
        let secret = e
            .webhook_secret
            .as_deref()
            .ok_or_else(|| ConfigError::invalid("webhook_secret", Source::Together, "required with --webhook"))?;
        webhooks.push(Webhook {
            name: "default".into(),
            url: url::Url::parse(url).expect("checked by merge"),
            secret: Secret::parse(secret).expect("checked by merge"),
            filter: global.clone(),
        });
    }
    let table_source = || path.map_or(Source::Default, |p| Source::File(p.to_owned()));
    for (i, w) in e.webhook_tables.iter().enumerate() {
        let bad = |k: &str, m: String| ConfigError::invalid(format!("webhook[{i}].{k}"), table_source(), m);
        let url = check_url(&w.url, &["http", "https"]).map_err(|m| bad("url", m))?;
        let secret = Secret::parse(&w.secret).map_err(|m| bad("secret", m))?;
        let name = w.name.clone().unwrap_or_else(|| format!("webhook-{i}"));
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(bad("name", format!("{name:?}: letters, digits, _ and - only")));
        }
        if webhooks.iter().any(|o: &Webhook| o.name == name) {
            return Err(bad("name", format!("{name:?} is used twice")));
        }
        let own = filter(&w.list, &w.country).map_err(|(k, m)| bad(k, m))?;
        webhooks.push(Webhook { name, url, secret, filter: narrow(&global, own) });
    }
    if nats.is_none() && webhooks.is_empty() {
        return Err(ConfigError::invalid(
            "nats_url",
            Source::Default,
            "nothing to relay to: set --nats-url, --webhook or a [[webhook]] table",
        ));
    }
    Ok(Config {
        server: e.server,
        token: e.token,
        data_dir: e.data_dir,
        filter: global,
        nats,
        webhooks,
        webhook_timeout: Duration::from_millis(e.webhook_timeout_ms),
        max_backoff: Duration::from_millis(e.max_backoff_ms),
        metrics_listen: e.metrics_listen,
        log_json: e.log_format == "json",
        log_level: e.log_level,
    })
}

// The relay's checks of single values (`Check<T>` takes `&T`).

#[allow(clippy::ptr_arg)]
fn http_or_https(v: &String) -> Result<(), String> {
    check_url(v, &["http", "https"]).map(|_| ())
}

#[allow(clippy::ptr_arg)]
fn nats_url(v: &String) -> Result<(), String> {
    check_url(v, &["nats", "tls"]).map(|_| ())
}

#[allow(clippy::ptr_arg)]
fn secret(v: &String) -> Result<(), String> {
    Secret::parse(v).map(|_| ())
}

#[allow(clippy::ptr_arg)]
fn stream_name(v: &String) -> Result<(), String> {
    if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(format!("{v:?}: letters, digits, _ and - only"));
    }
    Ok(())
}

#[allow(clippy::ptr_arg)]
fn subject_prefix(v: &String) -> Result<(), String> {
    if v.is_empty() || v.split('.').any(|t| t.is_empty() || t.contains(['*', '>', ' '])) {
        return Err(format!("{v:?} is not a subject prefix (tokens separated by dots, no wildcards)"));
    }
    Ok(())
}

#[allow(clippy::ptr_arg)]
fn nats_format(v: &String) -> Result<(), String> {
    match v.as_str() {
        "json" | "protobuf" => Ok(()),
        other => Err(format!("{other:?}: json or protobuf")),
    }
}

fn replicas(v: &usize) -> Result<(), String> {
    if (1..=5).contains(v) { Ok(()) } else { Err(format!("{v}: 1 to 5")) }
}

fn backoff(v: &u64) -> Result<(), String> {
    if *v < 100 { Err("must be at least 100".into()) } else { Ok(()) }
}

#[allow(clippy::ptr_arg)]
fn retention(v: &String) -> Result<(), String> {
    retention_policy(v).map(|_| ())
}

fn retention_policy(v: &str) -> Result<async_nats::jetstream::stream::RetentionPolicy, String> {
    use async_nats::jetstream::stream::RetentionPolicy;
    match v {
        "limits" => Ok(RetentionPolicy::Limits),
        "interest" => Ok(RetentionPolicy::Interest),
        "workqueue" => Ok(RetentionPolicy::WorkQueue),
        other => Err(format!("{other:?}: limits, interest or workqueue")),
    }
}

#[allow(clippy::ptr_arg)]
fn lists(v: &Vec<String>) -> Result<(), String> {
    filter(v, &[]).map(|_| ()).map_err(|(_, m)| m)
}

#[allow(clippy::ptr_arg)]
fn countries(v: &Vec<String>) -> Result<(), String> {
    filter(&[], v).map(|_| ()).map_err(|(_, m)| m)
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn file(text: &str) -> Settings {
        Settings::from_table(toml::from_str(text).unwrap(), std::path::Path::new("relay.toml")).unwrap()
    }

    #[test]
    fn flags_beat_the_file_and_tables_narrow_the_global_filter() {
        let file = file(&format!(
            "nats_url = \"nats://bus:4222\"\nnats_replicas = 3\nlist = [\"cyber\"]\n\
             [[webhook]]\nname = \"crm\"\nurl = \"https://crm.example/hook\"\nsecret = \"{SECRET}\"\ncountry = [\"mx\"]\n"
        ));
        let flags = Settings { nats_replicas: Some(2), ..Settings::default() };
        let c = resolve(&flags, &file).unwrap();
        let nats = c.nats.unwrap();
        assert_eq!((nats.url.as_str(), nats.replicas, nats.stream.as_str()), ("nats://bus:4222", 2, "ELIGIBILITY"));
        assert_eq!(c.webhooks.len(), 1);
        let crm = &c.webhooks[0];
        assert_eq!(crm.name, "crm");
        assert_eq!(crm.filter.lists, vec![ListId::parse("cyber").unwrap()], "the global list filter applies");
        assert_eq!(crm.filter.countries, vec![Country::parse("MX").unwrap()], "its own country filter");
        assert_eq!(c.max_backoff, Duration::from_secs(60), "the default");
    }

    #[test]
    fn errors_name_the_key_and_where_the_value_came_from() {
        let err = |flags: Settings, file: Settings| resolve(&flags, &file).unwrap_err().to_string();
        let nats = || Settings {
            nats_url: Some("nats://bus:4222".into()),
            config: Some("relay.toml".into()),
            ..Settings::default()
        };
        let e = err(Settings { nats_replicas: Some(0), ..nats() }, Settings::default());
        assert_eq!(e, "invalid nats_replicas: 0: 1 to 5 (from --nats-replicas or ELIGIBILITY_RELAY_NATS_REPLICAS)");
        let e = err(nats(), file("max_backoff_ms = 5\n"));
        assert!(e.starts_with("invalid max_backoff_ms: must be at least 100 (from the config file"), "{e}");
        let e = err(nats(), file("country = [\"XX\"]\n"));
        assert!(e.starts_with("invalid country: \"XX\"") && e.contains("relay.toml"), "{e}");
        let e = err(
            nats(),
            file(&format!(
                "[[webhook]]\nurl = \"https://a/h\"\nsecret = \"{SECRET}\"\n[[webhook]]\nname = \"webhook-0\"\nurl = \"https://b/h\"\nsecret = \"{SECRET}\"\n"
            )),
        );
        assert!(e.starts_with("invalid webhook[1].name: \"webhook-0\" is used twice"), "{e}");
        let e = Settings::from_table(toml::from_str("nats_urll = \"x\"").unwrap(), std::path::Path::new("r.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key \"nats_urll\"") && e.contains("nats_url,") && e.contains("webhook"), "{e}");
    }
}
