//! The HTTP edge (the only axum importer): routes, thin handlers, the JSON error shape
//! and the web widget's assets. Handlers parse, call the service, map the result.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::OnceCell;

use crate::service::{AgentError, Channel, ConversationService, IncomingMessage, ServiceError};

const WIDGET_JS: &str = include_str!("assets/widget.js");
const DEMO_PAGE: &str = include_str!("assets/demo.html");
const AGENT_PAGE: &str = include_str!("assets/agent.html");
const DASHBOARD_PAGE: &str = include_str!("assets/dashboard.html");
const BODY_LIMIT: usize = 64 * 1024;

/// Shared by handlers: the service appears once the index and model are loaded.
#[derive(Clone, Default)]
pub struct AppState {
    pub service: Arc<OnceCell<Arc<ConversationService>>>,
    pub voice: Arc<OnceCell<Arc<crate::voice::Voice>>>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Bearer token of the operations endpoints (`CSKH_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// Bearer token of the programmatic `api` channel (`CSKH_API_TOKEN`); `None`
    /// leaves that channel open.
    pub api_token: Option<String>,
}

/// The one error shape: `{"error": {"code": "...", "message": "..."}}`.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        (self.status, body).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid { field, message } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_field",
                format!("{field} {message}"),
            ),
            ServiceError::DuplicateMessageId => ApiError::new(
                StatusCode::CONFLICT,
                "duplicate_message_id",
                "this message_id was already used for a different text; \
                 a new message needs a new message_id (a retry repeats the same text)",
            ),
            ServiceError::Store(err) => {
                tracing::error!(error = %err, "storage failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error, please retry",
                )
            }
            ServiceError::Retrieval(err) => {
                tracing::error!(error = %err, "retrieval failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error, please retry",
                )
            }
        }
    }
}

fn service(state: &AppState) -> Result<Arc<ConversationService>, ApiError> {
    state.service.get().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the service is still loading its knowledge index and model",
        )
    })
}

/// Serves the API until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Html(DEMO_PAGE) }))
        .route("/widget.js", get(widget_js))
        .route("/agent", get(|| async { Html(AGENT_PAGE) }))
        .route("/dashboard", get(|| async { Html(DASHBOARD_PAGE) }))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/ready", get(ready))
        .route("/api/v1/messages", post(post_message))
        .route("/api/v1/web/history", get(web_history))
        .route("/api/v1/web/events", get(web_events))
        .route("/api/v1/agent/login", post(agent_login))
        .route("/api/v1/handoffs", get(list_handoffs))
        .route("/api/v1/handoffs/{id}", get(get_handoff))
        .route("/api/v1/handoffs/{id}/claim", post(claim))
        .route("/api/v1/handoffs/{id}/reply", post(reply))
        .route("/api/v1/handoffs/{id}/resolve", post(resolve))
        .route("/api/v1/handoffs/{id}/release", post(release))
        .route("/api/v1/handoffs/{id}/note", post(note))
        .route("/api/v1/handoffs/{id}/transfer", post(transfer))
        .route("/api/v1/history", get(history))
        .route("/api/v1/agent/events", get(agent_events))
        .route("/api/v1/outbox/failed", get(failed_deliveries))
        .route(
            "/webhooks/messenger",
            get(messenger_subscribe).post(messenger_webhook),
        )
        .route("/webhooks/zalo", post(zalo_webhook))
        .route("/voice/twilio/incoming", post(twilio_incoming))
        .route("/voice/twilio/gather", post(twilio_gather))
        .route("/api/v1/voice/turn", post(voice_turn))
        .route("/metrics", get(metrics))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/nps", post(send_nps))
        .route("/api/v1/knowledge", get(knowledge_status))
        .route("/api/v1/knowledge/search", get(search_knowledge))
        .route("/api/v1/knowledge/try", get(try_question))
        .route("/api/v1/knowledge/reload", post(reload_knowledge))
        .route("/api/v1/knowledge/gaps", get(list_gaps))
        .route("/api/v1/knowledge/gaps/{id}/accept", post(accept_gap))
        .route("/api/v1/knowledge/gaps/{id}/reject", post(reject_gap))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not accept this method",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn widget_js() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        WIDGET_JS,
    )
}

async fn ready(State(state): State<AppState>) -> Response {
    match state.service.get() {
        Some(_) => Json(json!({"status": "ready"})).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "loading"})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    channel: String,
    user_id: String,
    text: String,
    message_id: String,
}

/// Parses a JSON body by hand so every failure gets the JSON error shape.
fn parse_body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("body is not valid JSON: {e}"),
        )
    })?;
    serde_json::from_value(value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string()))
}

/// A JSON body parsed by hand (see [`parse_body`]); an oversized body is a 413 in
/// the JSON error shape.
struct JsonBody<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        Ok(JsonBody(parse_body(&bytes)?))
    }
}

/// The raw body (webhooks verify signatures on it); an oversized or unreadable body
/// is rejected in the JSON error shape.
struct RawBody(Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| {
                let (status, code) = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
                } else {
                    (StatusCode::BAD_REQUEST, "invalid_request")
                };
                ApiError::new(status, code, e.body_text())
            })
    }
}

/// axum's `Query`, with a rejection in the JSON error shape (a missing or malformed
/// query parameter is a 400 `invalid_request`). Every handler uses this one.
struct Query<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for Query<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("query string: {}", e.body_text()),
                )
            })
    }
}

/// axum's `Path`, with a rejection in the JSON error shape.
struct Path<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S>
    for Path<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("path: {}", e.body_text()),
                )
            })
    }
}

/// The signed-in agent (from `Authorization: Bearer …`) and the service.
struct SignedIn {
    agent: String,
    svc: Arc<ConversationService>,
}

impl axum::extract::FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let svc = service(state)?;
        let agent = agent(&svc, &parts.headers).await?;
        Ok(SignedIn { agent, svc })
    }
}

async fn post_message(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<MessageBody>,
) -> Result<Response, ApiError> {
    let channel = parse_channel(&body.channel)?;
    if channel == Channel::Api {
        api_client(&state, &headers)?;
    }
    let svc = service(&state)?;
    let resp = svc
        .handle(IncomingMessage::text(
            channel,
            body.user_id,
            body.message_id,
            body.text,
        ))
        .await?;
    Ok(Json(resp).into_response())
}

#[derive(Deserialize)]
struct VisitorQuery {
    visitor_id: String,
}

async fn web_history(
    State(state): State<AppState>,
    Query(q): Query<VisitorQuery>,
) -> Result<Response, ApiError> {
    let svc = service(&state)?;
    conversation_history(&svc, Channel::Web, &q.visitor_id).await
}

/// A channel customers post to directly (platform channels come through webhooks).
fn parse_channel(name: &str) -> Result<Channel, ApiError> {
    Channel::parse(name).filter(|c| c.direct()).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_channel",
            format!("unknown channel `{name}` (expected api or web)"),
        )
    })
}

/// The messages of a channel identity's latest conversation.
async fn conversation_history(
    svc: &ConversationService,
    channel: Channel,
    user_id: &str,
) -> Result<Response, ApiError> {
    let conv = svc
        .store()
        .latest_conversation(channel.as_str(), user_id)
        .await
        .map_err(ServiceError::from)?;
    let Some(conv) = conv else {
        return Ok(Json(json!({"conversation_id": null, "messages": []})).into_response());
    };
    let messages = svc
        .store()
        .messages(&conv.id)
        .await
        .map_err(ServiceError::from)?;
    Ok(
        Json(json!({"conversation_id": conv.id, "status": conv.status, "messages": messages}))
            .into_response(),
    )
}

/// Server-sent events: every outbound message of the visitor's conversation as it is
/// stored (agent replies reach the widget this way; it drops ids it already shows).
async fn web_events(
    State(state): State<AppState>,
    Query(q): Query<VisitorQuery>,
) -> Result<Sse<impl futures_core::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let svc = service(&state)?;
    let mut rx = svc.subscribe();
    let store = svc.store().clone();
    let visitor = q.visitor_id;
    let stream = async_stream::stream! {
        loop {
            match rx.recv().await {
                Ok(live) => {
                    let ours = store
                        .conversation(&live.conversation_id)
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|c| c.channel == "web" && c.channel_user_id == visitor);
                    if ours {
                        let data = serde_json::to_string(&live.message).unwrap_or_default();
                        yield Ok(Event::default().event("message").data(data));
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Unauthorized => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid agent token is required",
            ),
            AgentError::BadCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "wrong username or password",
            ),
            AgentError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such ticket")
            }
            AgentError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", m),
            AgentError::Undeliverable(m) => ApiError::new(
                StatusCode::CONFLICT,
                "undeliverable",
                format!("the customer's platform will not accept this message: {m}"),
            ),
            AgentError::Refused(crate::store::Refusal::Closed) => ApiError::new(
                StatusCode::CONFLICT,
                "ticket_closed",
                "the ticket is resolved or closed; nothing was changed",
            ),
            AgentError::Refused(crate::store::Refusal::Taken) => ApiError::new(
                StatusCode::CONFLICT,
                "ticket_taken",
                "another agent holds this ticket; take it over (claim?take_over=true) \
                 or ask them to transfer it; nothing was changed",
            ),
            AgentError::Refused(crate::store::Refusal::SameDepartment) => ApiError::new(
                StatusCode::CONFLICT,
                "same_department",
                "the ticket is already in that department; nothing was changed",
            ),
            AgentError::Store(err) => ServiceError::Store(err).into(),
        }
    }
}

/// The credentials of an `Authorization: Bearer …` value (the scheme is
/// case-insensitive, as HTTP authentication schemes are).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The agent behind `Authorization: Bearer …`; anything else is a 401 that reveals
/// nothing.
async fn agent(svc: &ConversationService, headers: &HeaderMap) -> Result<String, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .ok_or(AgentError::Unauthorized)?;
    Ok(svc.agent_for_token(token.trim()).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

async fn agent_login(
    State(state): State<AppState>,
    JsonBody(b): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    let svc = service(&state)?;
    let token = svc.agent_login(&b.username, &b.password).await?;
    Ok(Json(json!({"token": token})).into_response())
}

#[derive(Deserialize)]
struct StatusQuery {
    status: Option<String>,
    view: Option<String>,
}

/// The hand-off queue: `?status=open|all`, `?view=full|summary` (summary: the queue
/// lines without each ticket's context, for desks with many tickets open).
async fn list_handoffs(
    SignedIn { svc, .. }: SignedIn,
    Query(q): Query<StatusQuery>,
) -> Result<Response, ApiError> {
    let open_only = match q.status.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_field",
                "status must be open or all",
            ))
        }
    };
    match q.view.as_deref() {
        None | Some("full") => Ok(Json(svc.tickets(open_only).await?).into_response()),
        Some("summary") => Ok(Json(svc.ticket_summaries(open_only).await?).into_response()),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "view must be full or summary",
        )),
    }
}

async fn get_handoff(s: SignedIn, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(s.svc.ticket(&id).await?).into_response())
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

/// An agent's search of the knowledge base (the console's "Tìm trong kho kiến thức").
async fn search_knowledge(s: SignedIn, Query(q): Query<SearchQuery>) -> Result<Response, ApiError> {
    let found = s
        .svc
        .search_knowledge(q.q.as_deref().unwrap_or_default())
        .await?;
    Ok(Json(found).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimQuery {
    /// Take the ticket from the agent who holds it.
    #[serde(default)]
    take_over: bool,
}

async fn claim(
    s: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<ClaimQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(s.svc.claim(&s.agent, &id, q.take_over).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyBody {
    text: String,
}

async fn reply(
    s: SignedIn,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ReplyBody>,
) -> Result<Response, ApiError> {
    Ok(Json(s.svc.reply(&s.agent, &id, &b.text).await?).into_response())
}

async fn resolve(s: SignedIn, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(s.svc.resolve(&s.agent, &id).await?).into_response())
}

async fn release(s: SignedIn, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(s.svc.release(&s.agent, &id).await?).into_response())
}

async fn note(
    s: SignedIn,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ReplyBody>,
) -> Result<Response, ApiError> {
    Ok(Json(s.svc.note(&s.agent, &id, &b.text).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    department: String,
}

async fn transfer(
    s: SignedIn,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<TransferBody>,
) -> Result<Response, ApiError> {
    Ok(Json(s.svc.transfer(&s.agent, &id, &b.department).await?).into_response())
}

#[derive(Deserialize)]
struct HistoryQuery {
    channel: String,
    user_id: String,
}

/// Polling endpoint for programmatic (`api`) customers: the messages of their latest
/// conversation, agent replies included. Only the `api` channel, behind its token:
/// a web visitor's history is read with the visitor's own random id
/// (`/api/v1/web/history`), never by naming a user id here.
async fn history(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    api_client(&state, &headers)?;
    let channel = parse_channel(&q.channel)?;
    if channel != Channel::Api {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_channel",
            "/api/v1/history serves the api channel only; the web widget reads \
             /api/v1/web/history?visitor_id=",
        ));
    }
    let svc = service(&state)?;
    conversation_history(&svc, channel, &q.user_id).await
}

#[derive(Deserialize)]
struct TokenQuery {
    token: String,
}

/// Server-sent events for the agent console: one `changed` event per queue change.
/// `EventSource` cannot send headers, so the bearer token comes as `?token=`.
async fn agent_events(
    State(state): State<AppState>,
    Query(q): Query<TokenQuery>,
) -> Result<Sse<impl futures_core::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let svc = service(&state)?;
    svc.agent_for_token(&q.token).await?;
    let mut rx = svc.subscribe_queue();
    let stream = async_stream::stream! {
        loop {
            match rx.recv().await {
                Ok(conversation) => yield Ok(Event::default().event("changed").data(conversation)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    yield Ok(Event::default().event("changed").data(""));
                }
                Err(_) => break,
            }
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Messages a platform refused for good (agents resend another way).
async fn failed_deliveries(SignedIn { svc, .. }: SignedIn) -> Result<Response, ApiError> {
    let rows = svc
        .store()
        .outbox_failed()
        .await
        .map_err(ServiceError::from)?;
    let list: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|(conversation_id, message_id, channel, text, error, at)| {
            json!({"conversation_id": conversation_id, "message_id": message_id,
                   "channel": channel, "text": text, "error": error, "created_at": at})
        })
        .collect();
    Ok(Json(list).into_response())
}

#[derive(Deserialize)]
struct Subscribe {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

fn not_configured(channel: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "channel_disabled",
        format!("the {channel} channel is not configured"),
    )
}

/// Meta's subscription handshake.
async fn messenger_subscribe(
    State(state): State<AppState>,
    Query(q): Query<Subscribe>,
) -> Result<Response, ApiError> {
    let svc = service(&state)?;
    let messenger = svc
        .adapter(Channel::Messenger)
        .ok_or_else(|| not_configured("messenger"))?;
    let ok = messenger.subscription(q.mode.as_deref(), q.token.as_deref());
    match (ok, q.challenge) {
        (true, Some(c)) => Ok(c.into_response()),
        (true, None) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "hub.challenge is missing",
        )),
        (false, _) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "verification token does not match",
        )),
    }
}

async fn messenger_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    webhook(&state, Channel::Messenger, &headers, &body).await?;
    Ok((StatusCode::OK, "EVENT_RECEIVED").into_response())
}

async fn zalo_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    webhook(&state, Channel::Zalo, &headers, &body).await?;
    Ok(Json(json!({"error": 0, "message": "Success"})).into_response())
}

/// Verify on the raw bytes, parse, store every message (deduplicated), acknowledge;
/// the bot's work runs after the response, off the request path.
async fn webhook(
    state: &AppState,
    channel: Channel,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(), ApiError> {
    let svc = service(state)?;
    let adapter = svc
        .adapter(channel)
        .ok_or_else(|| not_configured(channel.as_str()))?
        .clone();
    let signature = headers
        .get(adapter.signature_header())
        .and_then(|v| v.to_str().ok());
    if let Err(e) = adapter.verify(signature, body) {
        tracing::warn!(channel = channel.as_str(), error = %e, "webhook rejected");
        let status = match e {
            crate::channels::VerifyError::Missing => StatusCode::UNAUTHORIZED,
            _ => StatusCode::FORBIDDEN,
        };
        return Err(ApiError::new(status, "bad_signature", e.to_string()));
    }
    let events = adapter
        .parse(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_payload", e.to_string()))?;
    // One bad event never costs the others their answer: it is skipped (logged), and
    // the messages stored before a failure are answered whatever happens after.
    let mut fresh = Vec::new();
    let mut failure = None;
    for event in events {
        match event {
            crate::channels::InboundEvent::Message(m) => {
                let mut text = m.text;
                if let Some((cut, _)) = text
                    .char_indices()
                    .nth(crate::service::MAX_PLATFORM_TEXT_CHARS)
                {
                    // Absurdly long: its first part is kept rather than all of it lost.
                    tracing::warn!(
                        channel = channel.as_str(),
                        "webhook message cut to its first 20,000 characters"
                    );
                    text.truncate(cut);
                }
                let msg = IncomingMessage {
                    channel,
                    user_id: m.user_id,
                    message_id: m.message_id,
                    text,
                    account: m.account,
                    attachment: m.attachment,
                    escalate: None,
                };
                match svc.receive(&msg).await {
                    Ok(true) => fresh.push(msg),
                    Ok(false) => {
                        tracing::info!(channel = channel.as_str(), "repeated delivery acknowledged")
                    }
                    Err(ServiceError::Invalid { field, message }) => {
                        tracing::warn!(
                            channel = channel.as_str(),
                            field,
                            message,
                            "webhook event skipped: nothing to answer in it"
                        );
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            crate::channels::InboundEvent::Ignored(kind) => {
                tracing::debug!(channel = channel.as_str(), kind, "webhook event ignored");
            }
        }
    }
    if !fresh.is_empty() {
        let svc = svc.clone();
        tokio::spawn(async move {
            for msg in fresh {
                if let Err(e) = svc.handle(msg).await {
                    tracing::error!(error = %e, "webhook message not answered; it is retried at the next start");
                }
            }
        });
    }
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn voice(state: &AppState) -> Result<Arc<crate::voice::Voice>, ApiError> {
    service(state)?;
    state.voice.get().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "voice is still loading",
        )
    })
}

/// A Twilio request: the verified form parameters, or 403 / 404.
fn twilio_params(
    v: &crate::voice::Voice,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Vec<(String, String)>, ApiError> {
    let cfg = v.config();
    let (Some(token), Some(base)) = (cfg.twilio_auth_token.as_deref(), cfg.public_url.as_deref())
    else {
        return Err(not_configured("twilio"));
    };
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_form", e.to_string()))?;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{}", base.trim_end_matches('/'), path);
    let sig = headers
        .get("x-twilio-signature")
        .and_then(|h| h.to_str().ok());
    if !crate::voice::twilio::verify(token, &url, &params, sig) {
        tracing::warn!("Twilio request with a missing or wrong signature rejected");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_signature",
            "X-Twilio-Signature does not match",
        ));
    }
    Ok(params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn twiml_response(v: &crate::voice::Voice, reply: &crate::voice::VoiceReply) -> Response {
    let cfg = v.config();
    let xml = crate::voice::twilio::twiml(reply, &cfg.voice, "/voice/twilio/gather", &cfg.hints);
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], xml).into_response()
}

fn required<'a>(params: &'a [(String, String)], name: &'static str) -> Result<&'a str, ApiError> {
    param(params, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("missing {name}"),
            )
        })
}

async fn twilio_incoming(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let v = voice(&state)?;
    let params = twilio_params(&v, &uri, &headers, &body)?;
    let call = required(&params, "CallSid")?;
    let from = required(&params, "From")?;
    let reply = v.start(call, from, "twilio").await?;
    Ok(twiml_response(&v, &reply))
}

async fn twilio_gather(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let v = voice(&state)?;
    let params = twilio_params(&v, &uri, &headers, &body)?;
    let turn = crate::voice::VoiceTurn {
        call_id: required(&params, "CallSid")?.to_string(),
        from: required(&params, "From")?.to_string(),
        text: param(&params, "SpeechResult")
            .unwrap_or_default()
            .to_string(),
        confidence: param(&params, "Confidence").and_then(|c| c.parse().ok()),
        alternatives: Vec::new(),
        dtmf: param(&params, "Digits").map(String::from),
    };
    let reply = v.turn("twilio", turn).await?;
    Ok(twiml_response(&v, &reply))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoiceTurnBody {
    call_id: String,
    from: String,
    #[serde(default)]
    text: String,
    confidence: Option<f32>,
    #[serde(default)]
    alternatives: Vec<crate::voice::Alternative>,
    dtmf: Option<String>,
    /// The call just connected: answer with the greeting.
    #[serde(default)]
    start: bool,
}

/// The generic voice API for other speech front ends (bearer `CSKH_VOICE_TOKEN`).
async fn voice_turn(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<VoiceTurnBody>,
) -> Result<Response, ApiError> {
    let v = voice(&state)?;
    if v.config().token.is_none() {
        return Err(not_configured("voice"));
    }
    if !bearer_is(&headers, v.config().token.as_deref()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid voice token is required",
        ));
    }
    let reply = if b.start {
        v.start(&b.call_id, &b.from, "api").await?
    } else {
        v.turn(
            "api",
            crate::voice::VoiceTurn {
                call_id: b.call_id,
                from: b.from,
                text: b.text,
                confidence: b.confidence,
                alternatives: b.alternatives,
                dtmf: b.dtmf,
            },
        )
        .await?
    };
    Ok(Json(reply).into_response())
}

/// Records every routed request's latency.
async fn track(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let t0 = std::time::Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .http_duration
        .with_label_values(&[route.as_str(), method.as_str(), resp.status().as_str()])
        .observe(t0.elapsed().as_secs_f64());
    resp
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    // Backlogs, traffic per channel and the knowledge's hash are an operator's view.
    if let Err(e) = admin(&state, &headers) {
        return e.into_response();
    }
    let m = &state.metrics;
    if let Some(svc) = state.service.get() {
        if let Ok((open, overdue)) = svc.store().ticket_backlog().await {
            m.open_tickets.set(open);
            m.overdue_tickets.set(overdue);
        }
        if let Ok(rows) = svc.store().outbox_counts().await {
            for s in ["pending", "sent", "failed"] {
                let n = rows.iter().find(|(k, _)| k == s).map(|r| r.1).unwrap_or(0);
                m.outbox.with_label_values(&[s]).set(n as f64);
            }
        }
        let llm = svc.llm().map(|l| &l.stats);
        let get = |c: Option<&std::sync::atomic::AtomicU64>| {
            c.map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
                .unwrap_or(0) as f64
        };
        for (outcome, v) in [
            ("calls", get(llm.map(|s| &s.calls))),
            ("accepted", get(llm.map(|s| &s.accepted))),
            ("fallbacks", get(llm.map(|s| &s.fallbacks))),
            ("timeouts", get(llm.map(|s| &s.timeouts))),
            ("errors", get(llm.map(|s| &s.errors))),
        ] {
            m.llm.with_label_values(&[outcome]).set(v);
        }
        let core = svc.bot().core();
        let model = if core.retriever.has_model() {
            "multilingual-e5-small"
        } else {
            "none"
        };
        let entries = core.retriever.knowledge().len().to_string();
        let index = core.retriever.knowledge().content_hash()[..16].to_string();
        m.info.reset();
        m.info
            .with_label_values(&[model, entries.as_str(), index.as_str()])
            .set(1.0);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
        .into_response()
}

/// The operator behind `Authorization: Bearer <CSKH_ADMIN_TOKEN>`.
/// Whether `Authorization: Bearer …` carries `expected` (compared in constant time;
/// an unset or empty expected token matches nothing).
fn bearer_is(headers: &HeaderMap, expected: Option<&str>) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or_default();
    expected
        .is_some_and(|t| !t.is_empty() && crate::secret::same_bytes(given.as_bytes(), t.as_bytes()))
}

/// A client of the programmatic `api` channel: `Authorization: Bearer
/// <CSKH_API_TOKEN>` when a token is configured (open otherwise, as warned at start-up).
fn api_client(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match state.api_token.as_deref() {
        None => Ok(()),
        Some(expected) if bearer_is(headers, Some(expected)) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API token is required for the api channel (CSKH_API_TOKEN)",
        )),
    }
}

fn admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if bearer_is(headers, state.admin_token.as_deref()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid admin token is required (CSKH_ADMIN_TOKEN)",
        ))
    }
}

/// `YYYY-MM-DD` (a local day's start) or RFC 3339.
/// Which end of a range a `from`/`to` value is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bound {
    From,
    To,
}

/// A `from`/`to` query value: a local day `YYYY-MM-DD` at `offset` (the business time
/// zone) or an RFC 3339 time. Ranges are half-open, `[from, to)`: a day as `from`
/// starts at its local midnight and a day as `to` ends at the next one, so the day is
/// included and `from=D&to=D` is that one day. Years 1 to 9999 only.
fn parse_time(
    bound: Bound,
    v: &str,
    offset: chrono::FixedOffset,
) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    use chrono::Datelike;
    let name = match bound {
        Bound::From => "from",
        Bound::To => "to",
    };
    let invalid =
        |message: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", message);
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        if !(1..=9999).contains(&d.year()) {
            return Err(invalid(format!(
                "{name} must be a day from 0001-01-01 to 9999-12-31"
            )));
        }
        let day = match bound {
            Bound::From => d,
            Bound::To => d
                .succ_opt()
                .expect("a day before year 10000 has a next day"),
        };
        let local = day.and_hms_opt(0, 0, 0).expect("midnight");
        return Ok(local
            .and_local_timezone(offset)
            .single()
            .expect("fixed offset")
            .with_timezone(&chrono::Utc));
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|d| d.with_timezone(&chrono::Utc))
        .map_err(|_| invalid(format!("{name} must be YYYY-MM-DD or an RFC 3339 time")))
}

#[derive(Deserialize)]
struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

async fn stats(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let svc = service(&state)?;
    let offset = svc.utc_offset();
    let now = chrono::Utc::now();
    let to = match &q.to {
        Some(v) => parse_time(Bound::To, v, offset)?,
        None => now,
    };
    let from = match &q.from {
        Some(v) => parse_time(Bound::From, v, offset)?,
        None => to - chrono::Duration::days(7),
    };
    if from >= to {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "from must be before to (a day as `to` includes that day)",
        ));
    }
    let s = crate::stats::compute(svc.store(), from, to, now, offset)
        .await
        .map_err(ServiceError::from)?;
    Ok(Json(s).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NpsBody {
    channel: String,
    user_id: String,
}

/// Sends the NPS question to a customer (operators).
async fn send_nps(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<NpsBody>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let svc = service(&state)?;
    let channel = Channel::parse(&b.channel).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_channel",
            format!("unknown channel `{}`", b.channel),
        )
    })?;
    match svc.ask_nps(channel, &b.user_id).await? {
        crate::service::NpsAsked::Sent => Ok(Json(json!({"sent": true})).into_response()),
        crate::service::NpsAsked::NoConversation => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no conversation for this customer",
        )),
        crate::service::NpsAsked::Busy => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conversation_busy",
            "the customer is with an agent or answering a survey; nothing was sent",
        )),
    }
}

fn gap_error(e: crate::gaps::GapError) -> ApiError {
    use crate::gaps::GapError as G;
    match e {
        G::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such knowledge gap"),
        G::NoAnswer => ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", e.to_string()),
        G::Knowledge(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_knowledge", m),
        G::AlreadyAccepted(_) => {
            ApiError::new(StatusCode::CONFLICT, "gap_already_accepted", e.to_string())
        }
        G::Store(err) => ServiceError::Store(err).into(),
    }
}

/// The window gaps are computed over: `from`/`to`, by default the last 30 days.
fn gap_window(svc: &ConversationService, q: &RangeQuery) -> Result<(String, String), ApiError> {
    let offset = svc.utc_offset();
    let now = chrono::Utc::now();
    let to = match &q.to {
        Some(v) => parse_time(Bound::To, v, offset)?,
        None => now + chrono::Duration::minutes(1),
    };
    let from = match &q.from {
        Some(v) => parse_time(Bound::From, v, offset)?,
        None => to - chrono::Duration::days(30),
    };
    Ok((crate::stats::db_time(from), crate::stats::db_time(to)))
}

async fn list_gaps(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let svc = service(&state)?;
    let (from, to) = gap_window(&svc, &q)?;
    let gaps = crate::gaps::report(&svc, &from, &to)
        .await
        .map_err(gap_error)?;
    Ok(Json(gaps).into_response())
}

async fn find_gap(svc: &ConversationService, id: &str) -> Result<crate::gaps::Gap, ApiError> {
    let (from, to) = gap_window(
        svc,
        &RangeQuery {
            from: None,
            to: None,
        },
    )?;
    let from = (chrono::DateTime::parse_from_rfc3339(&from).expect("iso")
        - chrono::Duration::days(60))
    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    crate::gaps::report(svc, &from, &to)
        .await
        .map_err(gap_error)?
        .into_iter()
        .find(|g| g.id == id)
        .ok_or_else(|| gap_error(crate::gaps::GapError::NotFound))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    question: Option<String>,
    answer: Option<String>,
}

async fn accept_gap(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let b: AcceptBody = if body.is_empty() {
        AcceptBody::default()
    } else {
        parse_body(&body)?
    };
    let svc = service(&state)?;
    let gap = find_gap(&svc, &id).await?;
    let reloader = reloader(&svc)?;
    let entry = crate::gaps::accept(&svc, &reloader, &gap, b.question, b.answer)
        .await
        .map_err(gap_error)?;
    Ok(Json(json!({"entry_id": entry, "status": "accepted"})).into_response())
}

fn reloader(svc: &ConversationService) -> Result<Arc<crate::reload::Reloader>, ApiError> {
    svc.reloader().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "not_reloadable",
            "this server cannot rebuild its knowledge index",
        )
    })
}

/// What the bot's retrieval decides for a question (the dashboard's "Thử câu hỏi").
async fn try_question(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let svc = service(&state)?;
    let v = svc.try_question(q.q.as_deref().unwrap_or_default()).await?;
    Ok(Json(v).into_response())
}

/// The knowledge base that answers now, and the last rebuild that failed.
async fn knowledge_status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let svc = service(&state)?;
    Ok(Json(reloader(&svc)?.status()).into_response())
}

/// Rebuilds the index from the knowledge files now. Files that do not load change
/// nothing: 422 with the file and line, and the previous knowledge keeps answering.
async fn reload_knowledge(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let svc = service(&state)?;
    let report = reloader(&svc)?
        .reload(svc.bot(), crate::reload::Cause::Request)
        .await
        .map_err(|e| match e {
            crate::reload::ReloadError::Knowledge(k) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_knowledge",
                k.to_string(),
            ),
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reload_failed",
                other.to_string(),
            ),
        })?;
    let mut body = serde_json::to_value(report).expect("report");
    body["status"] = json!("reloaded");
    Ok(Json(body).into_response())
}

async fn reject_gap(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let svc = service(&state)?;
    let gap = find_gap(&svc, &id).await?;
    crate::gaps::reject(&svc, &gap).await.map_err(gap_error)?;
    Ok(Json(json!({"status": "rejected"})).into_response())
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for (value, want) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER  abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearerabc", None),
        ] {
            assert_eq!(bearer_token(value), want, "{value}");
        }
    }
}
