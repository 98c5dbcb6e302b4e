//! Tests of the settings table.

use clap::CommandFactory;

use super::*;

#[test]
fn redacts_passwords() {
    assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
    assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
}

#[test]
fn flags_beat_the_file_which_beats_defaults() {
    let flags = Settings { max_batch: Some(7), ..Default::default() };
    let file: Settings = toml::from_str("max_batch = 9\nmax_watchers = 11\n").unwrap();
    let r = flags.resolve(&file).unwrap();
    assert_eq!(r.config.limits.max_batch, 7);
    assert_eq!(r.config.watch.max_watchers, 11);
    assert_eq!(r.config.watch.max_watchers_per_connection, WatchConfig::default().max_watchers_per_connection);
}

#[test]
fn validation_errors_name_the_key() {
    let bad = |s: Settings| s.resolve(&Settings::default()).unwrap_err().to_string();
    assert!(bad(Settings { max_batch: Some(0), ..Default::default() }).contains("max_batch"));
    assert!(
        bad(Settings { log_format: Some("xml".into()), ..Default::default() })
            .contains("invalid log_format: \"xml\" is not text or json")
    );
    assert!(bad(Settings { tls_cert: Some("/nonexistent.pem".into()), ..Default::default() }).contains("tls_key"));
    assert!(bad(Settings { database_url: Some("mysql://x".into()), ..Default::default() }).contains("postgres://"));
    assert!(toml::from_str::<Settings>("max_batchh = 1").unwrap_err().to_string().contains("max_batchh"));
    assert!(toml::from_str::<Settings>("max_batch = \"many\"").unwrap_err().to_string().contains("max_batch"));
}

#[test]
fn file_errors_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.toml");
    let load = |text: &str| {
        std::fs::write(&path, text).unwrap();
        let flags = Settings { config: Some(path.clone()), ..Default::default() };
        Settings::load_file(flags.config.as_deref())
            .and_then(|file| flags.resolve(&file))
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let e = load("max_batch = \"big\"\n");
    assert!(e.starts_with("invalid max_batch: invalid type: string \"big\""), "{e}");
    assert!(e.contains("from the config file") && e.contains("server.toml"), "{e}");
    let e = load("max_batchh = 5\n");
    assert!(e.contains("unknown key \"max_batchh\"") && e.contains("max_batch,"), "{e}");
    for zero in ["pg_acquire_timeout_ms", "tail_poll_ms", "request_timeout_ms", "progress_interval_ms"] {
        let e = load(&format!("{zero} = 0\n"));
        assert!(e.contains(&format!("invalid {zero}: must be greater than 0")) && e.contains("config file"), "{e}");
    }
    assert!(load("h2_stream_window = 4294967295\n").contains("at most 2147483647"));
    // 0 is a meaningful wait: answer at once.
    std::fs::write(&path, "max_wait_ms = 0\n").unwrap();
    let flags = Settings { config: Some(path.clone()), ..Default::default() };
    assert!(Settings::load_file(flags.config.as_deref()).and_then(|f| flags.resolve(&f)).is_ok());
}

#[test]
fn every_key_is_a_flag_an_environment_variable_and_a_printed_line() {
    let command = Settings::command();
    let printed =
        toml::Table::try_from(Settings::default().merge(&Settings::default(), None).expect("the defaults are valid"))
            .unwrap();
    for key in KEYS {
        assert!(command.get_arguments().any(|a| a.get_long() == Some(&key.replace('_', "-"))), "--{key}");
        let from_file: Result<Settings, _> = toml::from_str(&format!("{key} = 0"));
        assert!(
            from_file.as_ref().map(|_| true).unwrap_or_else(|e| !e.to_string().contains("unknown field")),
            "{key} is a file key"
        );
        let optional =
            ["database_url", "tokens_file", "tls_cert", "tls_key", "tls_client_ca", "metrics_listen", "otlp_endpoint"];
        assert!(printed.contains_key(*key) || optional.contains(key), "{key} is printed");
    }
    // The one that was once missing from the merge.
    let r = Settings { otlp_endpoint: Some("http://127.0.0.1:4317".into()), ..Default::default() }
        .resolve(&Settings::default())
        .unwrap();
    assert_eq!(r.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4317"));
    let file: Settings = toml::from_str("otlp_endpoint = \"http://collector:4317\"").unwrap();
    assert_eq!(Settings::default().resolve(&file).unwrap().otlp_endpoint.as_deref(), Some("http://collector:4317"));
    assert!(Settings::default().resolve(&toml::from_str("otlp_endpoint = \"ftp://x\"").unwrap()).is_err());
}

#[test]
fn every_limit_of_the_config_can_be_set() {
    let file: Settings = toml::from_str(
        "max_changes = 2\nmax_page_size = 7\nwatch_buffer = 8\nwatch_feed_capacity = 16\nh2_max_concurrent_streams = 100\n",
    )
    .unwrap();
    let r = Settings::default().resolve(&file).unwrap();
    assert_eq!(r.config.limits.max_changes, 2);
    assert_eq!(r.config.limits.max_page_size, 7);
    assert_eq!(r.config.watch.buffer, 8);
    assert_eq!(r.config.watch.feed_capacity, 16);
    assert_eq!(r.config.http2.max_concurrent_streams, 100);
    let bad = |s: Settings| s.resolve(&Settings::default()).unwrap_err().to_string();
    assert!(bad(Settings { max_page_size: Some(0), ..Default::default() }).contains("max_page_size"));
    assert!(bad(Settings { watch_feed_capacity: Some(0), ..Default::default() }).contains("watch_feed_capacity"));
    assert!(bad(Settings { h2_max_concurrent_streams: Some(0), ..Default::default() }).contains("h2_max_concurrent"));
}
