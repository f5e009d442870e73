//! Typed configuration: defaults < TOML file < `CSKH_*` environment < command-line
//! flags, validated at start-up with clear errors.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::bot::DialogueConfig;
use crate::search::RetrievalParams;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OrdersBackendKind {
    Sqlite,
    Shopify,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrdersConfig {
    pub backend: OrdersBackendKind,
    /// Shopify-style Admin REST base URL (`https://shop.example.com`).
    pub base_url: Option<String>,
    pub token: Option<String>,
    pub token_header: String,
    pub timeout_ms: u64,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self {
            backend: OrdersBackendKind::Sqlite,
            base_url: None,
            token: None,
            token_header: "X-Shopify-Access-Token".into(),
            timeout_ms: 3000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub bind: IpAddr,
    pub port: u16,
    pub data: PathBuf,
    pub knowledge: PathBuf,
    pub model: PathBuf,
    /// Embedding cache directory (default: the data directory).
    pub embed_cache: Option<PathBuf>,
    /// How often `cskh serve` checks the knowledge files for edits (seconds; 0: only
    /// on `POST /api/v1/knowledge/reload` or SIGHUP).
    pub knowledge_watch_secs: u64,
    pub retrieval: RetrievalParams,
    pub dialogue: DialogueConfig,
    pub orders: OrdersConfig,
    /// Working hours for hand-off SLAs and the customer's expected wait.
    pub handoff: crate::handoff::BusinessHours,
    pub messenger: MessengerConfig,
    pub zalo: ZaloConfig,
    pub outbox: crate::channels::outbox::RetryPolicy,
    pub voice: crate::voice::VoiceConfig,
    pub llm: crate::llm::LlmConfig,
    /// Bearer token for `/api/v1/stats`, the dashboard and knowledge gaps.
    pub admin_token: Option<String>,
    /// Bearer token of the programmatic `api` channel: when set, `POST
    /// /api/v1/messages` with channel `api` and `/api/v1/history` require it. Unset,
    /// that channel is open (a warning is logged at start-up).
    pub api_token: Option<String>,
}

/// Facebook Messenger: enabled when the app secret and page token are set.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MessengerConfig {
    pub app_secret: Option<String>,
    pub verify_token: Option<String>,
    pub page_token: Option<String>,
    pub api_base: String,
}

impl Default for MessengerConfig {
    fn default() -> Self {
        Self {
            app_secret: None,
            verify_token: None,
            page_token: None,
            api_base: "https://graph.facebook.com/v21.0".into(),
        }
    }
}

/// Zalo Official Account: enabled when the app id, OA secret key and access token are set.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZaloConfig {
    pub app_id: Option<String>,
    pub oa_secret: Option<String>,
    pub app_secret: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub api_base: String,
    pub oauth_base: String,
    /// Webhook events signed more than this many seconds from now are rejected.
    pub max_event_age_secs: u64,
}

impl Default for ZaloConfig {
    fn default() -> Self {
        Self {
            app_id: None,
            oa_secret: None,
            app_secret: None,
            access_token: None,
            refresh_token: None,
            api_base: "https://openapi.zalo.me".into(),
            oauth_base: "https://oauth.zaloapp.com".into(),
            max_event_age_secs: 600,
        }
    }
}

fn set(v: &str) -> bool {
    !v.trim().is_empty()
}

impl MessengerConfig {
    pub fn enabled(&self) -> bool {
        [&self.app_secret, &self.verify_token, &self.page_token]
            .iter()
            .any(|v| v.as_deref().is_some_and(set))
    }
}

impl ZaloConfig {
    pub fn enabled(&self) -> bool {
        [&self.app_id, &self.oa_secret, &self.access_token]
            .iter()
            .any(|v| v.as_deref().is_some_and(set))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            data: "data".into(),
            knowledge: "knowledge".into(),
            model: "models/multilingual-e5-small".into(),
            embed_cache: None,
            knowledge_watch_secs: 2,
            retrieval: RetrievalParams::default(),
            dialogue: DialogueConfig::default(),
            orders: OrdersConfig::default(),
            handoff: crate::handoff::BusinessHours::default(),
            messenger: MessengerConfig::default(),
            zalo: ZaloConfig::default(),
            outbox: Default::default(),
            voice: Default::default(),
            llm: Default::default(),
            admin_token: None,
            api_token: None,
        }
    }
}

/// Command-line values that override everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub port: Option<u16>,
    pub data: Option<PathBuf>,
    pub knowledge: Option<PathBuf>,
}

fn env_parse<T: std::str::FromStr>(
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match get(name) {
        None => Ok(None),
        Some(v) => v.parse::<T>().map(Some).map_err(|e| ConfigError::Env {
            name: name.to_string(),
            message: format!("{v:?}: {e}"),
        }),
    }
}

impl Config {
    /// Loads `file` (if given; `cskh.toml` if present otherwise), then the process
    /// environment, then `over`.
    pub fn load(file: Option<&Path>, over: &Overrides) -> Result<Self, ConfigError> {
        Self::load_with_env(file, over, &|k| std::env::var(k).ok())
    }

    pub fn load_with_env(
        file: Option<&Path>,
        over: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let default_file = Path::new("cskh.toml");
        let path = match file {
            Some(p) => Some(p),
            None if default_file.exists() => Some(default_file),
            None => None,
        };
        let mut cfg = match path {
            Some(p) => {
                let src = crate::text::read_text(p)
                    .map_err(|e| ConfigError::Read(p.display().to_string(), e))?;
                toml::from_str::<Config>(&src).map_err(|e| ConfigError::Parse {
                    file: p.display().to_string(),
                    message: e.to_string(),
                })?
            }
            None => Config::default(),
        };
        if let Some(v) = env_parse(env, "CSKH_BIND")? {
            cfg.bind = v;
        }
        if let Some(v) = env_parse(env, "CSKH_PORT")? {
            cfg.port = v;
        }
        if let Some(v) = env("CSKH_DATA") {
            cfg.data = v.into();
        }
        if let Some(v) = env("CSKH_KNOWLEDGE") {
            cfg.knowledge = v.into();
        }
        if let Some(v) = env("CSKH_MODEL") {
            cfg.model = v.into();
        }
        if let Some(v) = env_parse(env, "CSKH_FOLLOWUP_MINUTES")? {
            cfg.dialogue.followup_minutes = v;
        }
        if let Some(v) = env_parse(env, "CSKH_KNOWLEDGE_WATCH_SECS")? {
            cfg.knowledge_watch_secs = v;
        }
        if let Some(v) = env("CSKH_EMBED_CACHE") {
            cfg.embed_cache = Some(v.into());
        }
        if let Some(v) = env("CSKH_ORDERS_BACKEND") {
            cfg.orders.backend = match v.as_str() {
                "sqlite" => OrdersBackendKind::Sqlite,
                "shopify" => OrdersBackendKind::Shopify,
                other => {
                    return Err(ConfigError::Env {
                        name: "CSKH_ORDERS_BACKEND".into(),
                        message: format!("{other:?}: expected sqlite or shopify"),
                    })
                }
            };
        }
        if let Some(v) = env("CSKH_ORDERS_BASE_URL") {
            cfg.orders.base_url = Some(v);
        }
        if let Some(v) = env("CSKH_ORDERS_TOKEN") {
            cfg.orders.token = Some(v);
        }
        if let Some(v) = env_parse(env, "CSKH_ORDERS_TIMEOUT_MS")? {
            cfg.orders.timeout_ms = v;
        }
        if let Some(v) = env("CSKH_BUSINESS_HOURS") {
            let (open, close) = v.split_once('-').ok_or_else(|| ConfigError::Env {
                name: "CSKH_BUSINESS_HOURS".into(),
                message: format!("{v:?}: expected HH:MM-HH:MM"),
            })?;
            cfg.handoff.open = open.trim().to_string();
            cfg.handoff.close = close.trim().to_string();
        }
        if let Some(v) = env("CSKH_ORDER_CODE_PATTERN") {
            cfg.dialogue.order_code_pattern = v;
        }
        let text = |name: &str, slot: &mut Option<String>| {
            if let Some(v) = env(name) {
                *slot = Some(v);
            }
        };
        text("CSKH_MESSENGER_APP_SECRET", &mut cfg.messenger.app_secret);
        text(
            "CSKH_MESSENGER_VERIFY_TOKEN",
            &mut cfg.messenger.verify_token,
        );
        text("CSKH_MESSENGER_PAGE_TOKEN", &mut cfg.messenger.page_token);
        if let Some(v) = env("CSKH_MESSENGER_API_BASE") {
            cfg.messenger.api_base = v;
        }
        text("CSKH_ZALO_APP_ID", &mut cfg.zalo.app_id);
        text("CSKH_ZALO_OA_SECRET", &mut cfg.zalo.oa_secret);
        text("CSKH_ZALO_APP_SECRET", &mut cfg.zalo.app_secret);
        text("CSKH_ZALO_ACCESS_TOKEN", &mut cfg.zalo.access_token);
        text("CSKH_ZALO_REFRESH_TOKEN", &mut cfg.zalo.refresh_token);
        if let Some(v) = env("CSKH_ZALO_API_BASE") {
            cfg.zalo.api_base = v;
        }
        if let Some(v) = env("CSKH_ZALO_OAUTH_BASE") {
            cfg.zalo.oauth_base = v;
        }
        if let Some(v) = env_parse(env, "CSKH_OUTBOX_RETRY_BASE_MS")? {
            cfg.outbox.retry_base_ms = v;
        }
        if let Some(v) = env_parse(env, "CSKH_OUTBOX_MAX_ATTEMPTS")? {
            cfg.outbox.max_attempts = v;
        }
        text("CSKH_TWILIO_AUTH_TOKEN", &mut cfg.voice.twilio_auth_token);
        text("CSKH_PUBLIC_URL", &mut cfg.voice.public_url);
        text("CSKH_VOICE_TRANSFER_TO", &mut cfg.voice.transfer_to);
        text("CSKH_VOICE_TOKEN", &mut cfg.voice.token);
        if let Some(v) = env_parse(env, "CSKH_VOICE_MIN_CONFIDENCE")? {
            cfg.voice.min_confidence = v;
        }
        text("CSKH_ADMIN_TOKEN", &mut cfg.admin_token);
        text("CSKH_API_TOKEN", &mut cfg.api_token);
        text("CSKH_LLM_BASE_URL", &mut cfg.llm.base_url);
        text("CSKH_LLM_API_KEY", &mut cfg.llm.api_key);
        text("CSKH_LLM_MODEL", &mut cfg.llm.model);
        if let Some(v) = env_parse(env, "CSKH_LLM_TIMEOUT_MS")? {
            cfg.llm.timeout_ms = v;
        }
        if let Some(v) = env("CSKH_PROMPTS") {
            cfg.llm.prompts = v.into();
        }
        if let Some(p) = over.port {
            cfg.port = p;
        }
        if let Some(d) = &over.data {
            cfg.data = d.clone();
        }
        if let Some(k) = &over.knowledge {
            cfg.knowledge = k.clone();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The `api` channel's token, if one is set (an empty value is none).
    pub fn api_token(&self) -> Option<String> {
        self.api_token.clone().filter(|t| set(t))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if let Err(e) = regex::Regex::new(&self.dialogue.order_code_pattern) {
            return Err(ConfigError::Invalid(format!(
                "dialogue.order_code_pattern: {e}"
            )));
        }
        if self.dialogue.fallbacks_before_handoff == 0 || self.dialogue.verification_attempts == 0 {
            return bad("dialogue counts must be at least 1");
        }
        check_retrieval(&self.retrieval, "retrieval.").map_err(ConfigError::Invalid)?;
        if self.orders.backend == OrdersBackendKind::Shopify {
            match &self.orders.base_url {
                Some(u) if u.starts_with("http://") || u.starts_with("https://") => {}
                _ => return bad("orders.base_url (CSKH_ORDERS_BASE_URL) must be an http(s) URL for the shopify backend"),
            }
            if self.orders.token.as_deref().is_none_or(str::is_empty) {
                return bad("orders.token (CSKH_ORDERS_TOKEN) is required for the shopify backend");
            }
        }
        self.handoff.validate().map_err(ConfigError::Invalid)?;
        let missing = |v: &Option<String>| v.as_deref().is_none_or(|s| !set(s));
        let url = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        let m = &self.messenger;
        if m.enabled() {
            if missing(&m.app_secret) || missing(&m.verify_token) || missing(&m.page_token) {
                return bad("messenger needs app_secret, verify_token and page_token (CSKH_MESSENGER_APP_SECRET, CSKH_MESSENGER_VERIFY_TOKEN, CSKH_MESSENGER_PAGE_TOKEN)");
            }
            if !url(&m.api_base) {
                return bad("messenger.api_base must be an http(s) URL");
            }
        }
        let z = &self.zalo;
        if z.enabled() {
            if missing(&z.app_id) || missing(&z.oa_secret) || missing(&z.access_token) {
                return bad("zalo needs app_id, oa_secret and access_token (CSKH_ZALO_APP_ID, CSKH_ZALO_OA_SECRET, CSKH_ZALO_ACCESS_TOKEN)");
            }
            if !url(&z.api_base) || !url(&z.oauth_base) {
                return bad("zalo.api_base and zalo.oauth_base must be http(s) URLs");
            }
        }
        let v = &self.voice;
        if !(0.0..=1.0).contains(&v.min_confidence) {
            return bad("voice.min_confidence must be between 0 and 1");
        }
        if v.max_sentences == 0 {
            return bad("voice.max_sentences must be at least 1");
        }
        if v.twilio_auth_token.as_deref().is_some_and(set)
            && !v.public_url.as_deref().is_some_and(url)
        {
            return bad("voice.public_url (CSKH_PUBLIC_URL) must be the http(s) base URL Twilio calls when a Twilio auth token is set");
        }
        let l = &self.llm;
        if l.base_url.as_deref().is_some_and(set) {
            if !l.base_url.as_deref().is_some_and(url) {
                return bad("llm.base_url (CSKH_LLM_BASE_URL) must be an http(s) URL");
            }
            if !l.model.as_deref().is_some_and(set) {
                return bad("llm.model (CSKH_LLM_MODEL) is required when llm.base_url is set");
            }
        }
        if l.timeout_ms == 0 || l.summary_timeout_ms == 0 || l.max_concurrent == 0 {
            return bad("llm.timeout_ms, summary_timeout_ms and max_concurrent must be positive");
        }
        if self.outbox.max_attempts == 0
            || self.outbox.retry_base_ms == 0
            || self.outbox.timeout_ms == 0
        {
            return bad("outbox.max_attempts, retry_base_ms and timeout_ms must be positive");
        }
        if self.orders.timeout_ms == 0 {
            return bad("orders.timeout_ms must be positive");
        }
        Ok(())
    }
}

/// The checks every reader of retrieval parameters applies (`serve`'s [retrieval],
/// `eval` and `calibrate`'s `--params`): thresholds are probabilities. `key` prefixes
/// the names in the message (`retrieval.` in cskh.toml, nothing in a params file).
pub fn check_retrieval(params: &RetrievalParams, key: &str) -> Result<(), String> {
    for lexical in [false, true] {
        let m = params.confidence_model(lexical);
        let prefix = if lexical { "lexical_" } else { "" };
        if !(0.0..=1.0).contains(&m.answer_threshold) || !(0.0..=1.0).contains(&m.clarify_threshold)
        {
            return Err(format!(
                "{key}{prefix}answer_threshold and {key}{prefix}clarify_threshold must be between 0 and 1 \
                 (found {} and {})",
                m.answer_threshold, m.clarify_threshold
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(
        file: Option<&str>,
        env: &[(&str, &str)],
        over: Overrides,
    ) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = file.map(|src| {
            let p = dir.path().join("cskh.toml");
            std::fs::write(&p, src).unwrap();
            p
        });
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load_with_env(path.as_deref(), &over, &|k| env.get(k).cloned())
    }

    #[test]
    fn layers_apply_in_order() {
        let c = load(
            Some("port = 9000\ndata = \"/srv/a\"\n"),
            &[],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!((c.port, c.data.to_str().unwrap()), (9000, "/srv/a"));
        let c = load(
            Some("port = 9000\n"),
            &[("CSKH_PORT", "9100")],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.port, 9100);
        let over = Overrides {
            port: Some(9200),
            ..Default::default()
        };
        let c = load(Some("port = 9000\n"), &[("CSKH_PORT", "9100")], over).unwrap();
        assert_eq!(c.port, 9200);
    }

    #[test]
    fn bad_config_is_rejected_clearly() {
        let e = load(Some("prot = 1\n"), &[], Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `prot`"), "{e}");
        let e = load(None, &[("CSKH_PORT", "abc")], Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("environment variable CSKH_PORT"), "{e}");
        let e = load(
            Some("[orders]\nbackend = \"shopify\"\n"),
            &[],
            Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("orders.base_url"), "{e}");
        let e = load(
            Some("[dialogue]\norder_code_pattern = \"(\"\n"),
            &[],
            Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("order_code_pattern"), "{e}");
        let e = load(
            Some("[retrieval]\nanswer_threshold = 5.0\n"),
            &[],
            Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("retrieval.answer_threshold and retrieval.clarify_threshold must be between 0 and 1"),
            "{e}"
        );
        let e = load(
            None,
            &[("CSKH_MESSENGER_APP_SECRET", "s")],
            Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("CSKH_MESSENGER_PAGE_TOKEN"), "{e}");
        let e = load(
            Some("[zalo]\napp_id = \"1\"\noa_secret = \"k\"\naccess_token = \"t\"\napi_base = \"ftp://x\"\n"),
            &[],
            Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("zalo.api_base"), "{e}");
        let ok = load(
            None,
            &[
                ("CSKH_ZALO_APP_ID", "1"),
                ("CSKH_ZALO_OA_SECRET", "k"),
                ("CSKH_ZALO_ACCESS_TOKEN", "t"),
            ],
            Overrides::default(),
        )
        .unwrap();
        assert!(ok.zalo.enabled() && !ok.messenger.enabled());
    }

    #[test]
    fn the_api_token_comes_from_the_file_or_the_environment() {
        let c = load(None, &[], Overrides::default()).unwrap();
        assert_eq!(c.api_token(), None);
        let c = load(
            Some("api_token = \"tok-file\"\n"),
            &[],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.api_token().as_deref(), Some("tok-file"));
        let c = load(
            Some("api_token = \"tok-file\"\n"),
            &[("CSKH_API_TOKEN", "tok-env")],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.api_token().as_deref(), Some("tok-env"));
        let c = load(None, &[("CSKH_API_TOKEN", "  ")], Overrides::default()).unwrap();
        assert_eq!(c.api_token(), None, "an empty token is no token");
    }
}
