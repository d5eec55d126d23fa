//! The HTTP API (axum), JSON under `/v1` as documented in `corridor_sdk::api`.
//!
//! It decodes and bounds input, calls the chain, and maps errors to `{"error": {code,
//! message}}` with the code's HTTP status. No business rule lives here.

use crate::audit::AuditLog;
use crate::auth::{Access, Reader, forbidden};
use crate::bounds::Bounds;
use crate::chain::Chain;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use corridor_sdk::api::{
    BatchSubmitRequest, BatchSubmitResponse, BatchSubmitResult, ErrorBody, EventRecord, KeyOwner, SubmitRequest,
    SubmitResponse, TxStatus,
};
use corridor_sdk::audit::{AUDIT_PAGE_ENTRIES_MAX, AUDIT_SUBJECT_ALL};
use corridor_sdk::crypto::PublicKey;
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::limits::{HISTORY_PAGE_ENTRIES_MAX, HTTP_BODY_BYTES_MAX, SUBMIT_BATCH_TXS_MAX, TX_BYTES_MAX};
use corridor_sdk::{AccountId, Hash, SignedTransaction};
use serde::Deserialize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// A single submission: one hex-encoded transaction and its JSON wrapping.
const SUBMIT_BODY_BYTES_MAX: usize = 2 * TX_BYTES_MAX + 1024;
/// The longest a `GET /v1/transactions/{hash}?wait_ms=` request is held.
pub(crate) const TX_WAIT_MS_MAX: u64 = 30_000;
/// How often an idle event stream sends a keep-alive comment.
pub(crate) const EVENT_KEEP_ALIVE_MS: u64 = 15_000;
const HISTORY_PAGE_ENTRIES_DEFAULT: usize = 100;

pub(crate) struct ApiError(pub(crate) Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(ErrorBody { error: self.0 })).into_response()
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError(Error::new(ErrorCode::BadRequest, rejection.body_text()))
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let code = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ErrorCode::TooLarge
    } else {
        ErrorCode::BadRequest
    };
    ApiError(Error::new(code, rejection.body_text()))
}

type ApiResult<T> = Result<T, ApiError>;

/// The API; every request passes `auth::layer` first (ADR 0031).
pub(crate) fn router(chain: Arc<Chain>, audit: Arc<AuditLog>, bounds: Bounds) -> Router {
    let authentication = (Arc::clone(&chain), audit, Arc::clone(&bounds.rates));
    Router::new()
        .route("/v1/status", get(status))
        .route(
            "/v1/transactions",
            post(submit).layer(DefaultBodyLimit::max(SUBMIT_BODY_BYTES_MAX)),
        )
        .route("/v1/transactions/batch", post(submit_batch))
        .route("/v1/transactions/{hash}", get(transaction))
        .route("/v1/accounts/{id}", get(account))
        .route("/v1/accounts/{id}/history", get(history))
        .route("/v1/accounts/{id}/proof", get(account_proof))
        .route("/v1/keys/{key}", get(key_owner))
        .route("/v1/currencies", get(currencies))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/events", get(events))
        .route("/v1/audit", get(audit_page))
        .route("/v1/fx/rates", get(fx_rates))
        .route("/v1/fx/locks/{id}", get(fx_lock))
        .route("/v1/contracts/{id}", get(contract))
        .route("/v1/schedules", get(schedules))
        .route("/v1/schedules/{id}", get(schedule))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError(Error::new(ErrorCode::NotFound, "no such endpoint")) })
        .method_not_allowed_fallback(|| async {
            ApiError(Error::new(
                ErrorCode::MethodNotAllowed,
                "this endpoint does not take that method",
            ))
        })
        .layer(axum::middleware::from_fn_with_state(authentication, crate::auth::layer))
        .layer(axum::middleware::from_fn(crate::bounds::request_timeout))
        .layer(axum::Extension(bounds))
        .layer(DefaultBodyLimit::max(HTTP_BODY_BYTES_MAX))
        .with_state(chain)
}

/// Hex → canonical bytes → `SignedTransaction`, each step with its code.
fn decode_tx(hex_text: &str) -> Result<SignedTransaction, Error> {
    if hex_text.len() > 2 * TX_BYTES_MAX {
        return Err(Error::new(
            ErrorCode::TooLarge,
            format!("transaction over {TX_BYTES_MAX} bytes"),
        ));
    }
    let bytes = hex::decode(hex_text.trim())
        .map_err(|error| Error::new(ErrorCode::BadHex, format!("tx is not hex: {error}")))?;
    SignedTransaction::from_bytes(&bytes)
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError(Error::new(ErrorCode::Unavailable, format!("worker failed: {error}"))))
}

async fn status(State(chain): State<Arc<Chain>>) -> Json<corridor_sdk::api::Status> {
    Json(chain.status())
}

async fn submit(
    State(chain): State<Arc<Chain>>,
    body: Result<Json<SubmitRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(request) = body.map_err(json_rejection)?;
    let decoded = {
        let _timer = chain.metrics.stages.time(crate::metrics::Stage::Decode);
        decode_tx(&request.tx)
    };
    let signed = decoded.inspect_err(|error| chain.metrics.rejected(error.code))?;
    let tx_hash = blocking(move || chain.admit(signed, false)).await??;
    Ok((StatusCode::ACCEPTED, Json(SubmitResponse { tx_hash })).into_response())
}

async fn submit_batch(
    State(chain): State<Arc<Chain>>,
    body: Result<Json<BatchSubmitRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(request) = body.map_err(json_rejection)?;
    if request.txs.len() > SUBMIT_BATCH_TXS_MAX {
        return Err(Error::new(
            ErrorCode::TooLarge,
            format!("at most {SUBMIT_BATCH_TXS_MAX} transactions per batch"),
        )
        .into());
    }
    let results = blocking(move || {
        let decoded = {
            let _timer = chain.metrics.stages.time(crate::metrics::Stage::Decode);
            request.txs.iter().map(|hex_text| decode_tx(hex_text)).collect()
        };
        chain.admit_many(decoded)
    })
    .await?;
    let results = results
        .into_iter()
        .map(|result| match result {
            Ok(hash) => BatchSubmitResult {
                tx_hash: Some(hash),
                error: None,
            },
            Err(error) => BatchSubmitResult {
                tx_hash: None,
                error: Some(error),
            },
        })
        .collect();
    Ok((StatusCode::ACCEPTED, Json(BatchSubmitResponse { results })).into_response())
}

#[derive(Deserialize)]
struct WaitQuery {
    wait_ms: Option<u64>,
}

async fn transaction(
    State(chain): State<Arc<Chain>>,
    axum::Extension(bounds): axum::Extension<Bounds>,
    reader: Reader,
    Path(hash): Path<String>,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) = query.map_err(query_rejection)?;
    let hash = Hash::from_hex(&hash)?;
    if reader.caller.id().is_none() {
        return Err(forbidden().into());
    }
    let mut wait = Duration::from_millis(query.wait_ms.unwrap_or(0).min(TX_WAIT_MS_MAX));
    // A held poll takes a permit; with none left, it answers at once.
    let _long_poll = match wait.is_zero() {
        true => None,
        false => {
            let permit = Arc::clone(&bounds.long_polls).try_acquire_owned().ok();
            if permit.is_none() {
                wait = Duration::ZERO;
            }
            permit
        }
    };
    let deadline = tokio::time::Instant::now() + wait;
    let mut heights = chain.subscribe_height();
    let mut recorded = false;
    loop {
        let lookup = Arc::clone(&chain);
        let found = blocking(move || lookup.tx_view(&hash)).await?;
        // Unknown and out of scope answer alike, except to a regulator (who sees all).
        let Some((view, sender)) = found else {
            return Err(match reader.caller.is_regulator() {
                true => Error::new(ErrorCode::NotFound, format!("no transaction {hash}")),
                false => forbidden(),
            }
            .into());
        };
        if !recorded {
            let grant = reader.caller.account_grant(&sender);
            let full = matches!(&grant, Ok(g) if g.access == Access::Full);
            let party = view.receipt.as_ref().is_some_and(|r| reader.caller.sees_receipt(r));
            if !full && !party {
                return Err(forbidden().into());
            }
            if grant.as_ref().is_ok_and(|g| g.audited) {
                reader.record(sender.as_str())?;
            }
            recorded = true;
        }
        if view.status != TxStatus::Pending || tokio::time::Instant::now() >= deadline {
            return Ok(Json(view).into_response());
        }
        // Wake on the next committed block, and at least every 100 ms for mempool rejections.
        let tick = deadline.min(tokio::time::Instant::now() + Duration::from_millis(100));
        let _ = tokio::time::timeout_at(tick, heights.changed()).await;
    }
}

fn parse_account(id: &str) -> Result<AccountId, Error> {
    AccountId::new(id)
}

async fn account(State(chain): State<Arc<Chain>>, reader: Reader, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_account(&id)?;
    let grant = reader.grant(&id)?;
    let view = blocking(move || {
        chain
            .account(&id)
            .ok_or_else(|| Error::new(ErrorCode::UnknownAccount, format!("no account {id}")))
    })
    .await??;
    Ok(Json(crate::auth::filter_account(view, &grant.access)).into_response())
}

async fn account_proof(State(chain): State<Arc<Chain>>, reader: Reader, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_account(&id)?;
    // A proof carries the whole record, so only a reader of the whole record gets one.
    let grant = reader.caller.account_grant(&id)?;
    if grant.access != Access::Full {
        return Err(forbidden().into());
    }
    reader.grant(&id)?;
    Ok(Json(blocking(move || chain.account_proof(&id)).await?).into_response())
}

#[derive(Deserialize)]
struct HistoryQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

async fn history(
    State(chain): State<Arc<Chain>>,
    reader: Reader,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) = query.map_err(query_rejection)?;
    let id = parse_account(&id)?;
    let limit = query.limit.unwrap_or(HISTORY_PAGE_ENTRIES_DEFAULT);
    if limit == 0 || limit > HISTORY_PAGE_ENTRIES_MAX {
        return Err(Error::new(
            ErrorCode::BadRequest,
            format!("limit must be 1 to {HISTORY_PAGE_ENTRIES_MAX}"),
        )
        .into());
    }
    let grant = reader.grant(&id)?;
    let before = query.before.unwrap_or(u64::MAX);
    let page = blocking(move || {
        if chain.account(&id).is_none() {
            return Err(Error::new(ErrorCode::UnknownAccount, format!("no account {id}")));
        }
        Ok(chain.history(&id, before, limit))
    })
    .await??;
    Ok(Json(crate::auth::filter_history(page, &grant.access)).into_response())
}

async fn key_owner(State(chain): State<Arc<Chain>>, reader: Reader, Path(key): Path<String>) -> ApiResult<Response> {
    let key = PublicKey::from_text(&key)?;
    if reader.caller.id().is_none() {
        return Err(forbidden().into());
    }
    let account = blocking(move || chain.key_owner(&key)).await?;
    // Outside the caller's full scope, absent and present answer alike.
    let in_scope = account
        .as_ref()
        .is_some_and(|owner| matches!(reader.caller.account_grant(owner), Ok(grant) if grant.access == Access::Full));
    match account {
        Some(account) if in_scope => {
            if reader.caller.account_grant(&account).is_ok_and(|g| g.audited) {
                reader.record(account.as_str())?;
            }
            Ok(Json(KeyOwner { account }).into_response())
        }
        None if reader.caller.is_regulator() => {
            Err(Error::new(ErrorCode::NotFound, "no account holds this public key").into())
        }
        _ => Err(forbidden().into()),
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

/// The audit log as the caller may see it (`audit.rs`): a regulator in full, a bank for
/// itself and its customers, an account for itself.
async fn audit_page(reader: Reader, query: Result<Query<AuditQuery>, QueryRejection>) -> ApiResult<Response> {
    let Query(query) = query.map_err(query_rejection)?;
    let limit = query.limit.unwrap_or(HISTORY_PAGE_ENTRIES_DEFAULT);
    if limit == 0 || limit > AUDIT_PAGE_ENTRIES_MAX {
        return Err(Error::new(
            ErrorCode::BadRequest,
            format!("limit must be 1 to {AUDIT_PAGE_ENTRIES_MAX}"),
        )
        .into());
    }
    let page = blocking(move || reader.audit().page(&reader.caller, query.after, limit)).await??;
    Ok(Json(page).into_response())
}

async fn currencies(State(chain): State<Arc<Chain>>) -> ApiResult<Response> {
    Ok(Json(blocking(move || chain.currencies()).await?).into_response())
}

async fn block(State(chain): State<Arc<Chain>>, Path(height): Path<String>) -> ApiResult<Response> {
    let height: u64 = height
        .parse()
        .map_err(|_| Error::new(ErrorCode::BadRequest, format!("height `{height}` is not a number")))?;
    let view = blocking(move || chain.block_view(height)).await?;
    let view = view.ok_or_else(|| Error::new(ErrorCode::NotFound, format!("no block at height {height}")))?;
    Ok(Json(view).into_response())
}

async fn fx_rates(State(chain): State<Arc<Chain>>) -> ApiResult<Response> {
    Ok(Json(blocking(move || chain.fx_rates()).await?).into_response())
}

async fn fx_lock(State(chain): State<Arc<Chain>>, reader: Reader, Path(id): Path<String>) -> ApiResult<Response> {
    let id: u64 = id
        .parse()
        .map_err(|_| Error::new(ErrorCode::BadRequest, format!("lock id `{id}` is not a number")))?;
    let view = blocking(move || chain.fx_lock(id)).await?;
    // Scoped like the accounts it names; a refusal looks the same whether the lock exists.
    let view = scoped_record(&reader, view, |view| vec![&view.payer, &view.provider])?
        .ok_or_else(|| Error::new(ErrorCode::UnknownFxLock, format!("no FX lock {id}")))?;
    Ok(Json(view).into_response())
}

async fn contract(State(chain): State<Arc<Chain>>, Path(id): Path<String>) -> ApiResult<Response> {
    let id: u64 = id
        .parse()
        .map_err(|_| Error::new(ErrorCode::BadRequest, format!("contract id `{id}` is not a number")))?;
    let view = blocking(move || chain.contract(id)).await?;
    let view = view.ok_or_else(|| Error::new(ErrorCode::UnknownContract, format!("no contract {id}")))?;
    Ok(Json(view).into_response())
}

async fn schedule(State(chain): State<Arc<Chain>>, reader: Reader, Path(id): Path<String>) -> ApiResult<Response> {
    let id: u64 = id
        .parse()
        .map_err(|_| Error::new(ErrorCode::BadRequest, format!("schedule id `{id}` is not a number")))?;
    let view = blocking(move || chain.schedule(id)).await?;
    let view = scoped_record(&reader, view, |view| vec![&view.payer])?
        .ok_or_else(|| Error::new(ErrorCode::UnknownSchedule, format!("no standing order {id}")))?;
    Ok(Json(view).into_response())
}

/// A record found by id is shown to a caller who may read one of the accounts it names. A
/// caller who may not, and one asking for an id that does not exist, both get `forbidden`
/// (a regulator, who may read everything, learns that it does not exist).
fn scoped_record<T>(
    reader: &Reader,
    view: Option<T>,
    accounts: impl Fn(&T) -> Vec<&AccountId>,
) -> Result<Option<T>, Error> {
    match view {
        Some(view) => {
            let granted = accounts(&view).into_iter().any(|account| reader.grant(account).is_ok());
            if granted { Ok(Some(view)) } else { Err(forbidden()) }
        }
        None if reader.caller.is_regulator() => Ok(None),
        None => Err(forbidden()),
    }
}

#[derive(Deserialize)]
struct SchedulesQuery {
    payer: String,
}

async fn schedules(
    State(chain): State<Arc<Chain>>,
    reader: Reader,
    query: Result<Query<SchedulesQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) = query.map_err(query_rejection)?;
    let payer = parse_account(&query.payer)?;
    reader.grant(&payer)?;
    Ok(Json(blocking(move || chain.schedules_of(&payer)).await?).into_response())
}

#[derive(Deserialize)]
struct EventsQuery {
    from_height: Option<u64>,
    /// An `EventRecord::id()`: resume with the event after it.
    after: Option<String>,
}

struct EventCursor {
    /// Held while the stream is open.
    _permit: tokio::sync::OwnedSemaphorePermit,
    caller: crate::auth::Caller,
    chain: Arc<Chain>,
    next_height: u64,
    /// Skip events at or before this (height, tx_index, event_index).
    after: Option<(u64, u32, u32)>,
    buffered: VecDeque<EventRecord>,
    heights: tokio::sync::watch::Receiver<u64>,
}

/// Server-Sent Events from `from_height` on, or after the event `after` (or the standard
/// `Last-Event-ID` header): stored blocks first, then live ones. A client that reconnects
/// with the last id it saw misses nothing and sees nothing twice.
async fn events(
    State(chain): State<Arc<Chain>>,
    axum::Extension(bounds): axum::Extension<Bounds>,
    reader: Reader,
    headers: axum::http::HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> ApiResult<Sse<impl futures::Stream<Item = Result<SseEvent, std::convert::Infallible>>>> {
    let Query(query) = query.map_err(query_rejection)?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let after = match query.after.or(last_event_id) {
        Some(id) => Some(EventRecord::parse_id(&id).ok_or_else(|| {
            Error::new(
                ErrorCode::BadRequest,
                format!("event id `{id}` is not height:tx_index:event_index"),
            )
        })?),
        None => None,
    };
    // Anonymous callers see nothing; a regulator's or central bank's stream reads other
    // accounts' data and is audited once, as a read of everything, once it has its place.
    let role = match &reader.caller {
        crate::auth::Caller::Anonymous => return Err(forbidden().into()),
        crate::auth::Caller::Account { role, .. } => role.clone(),
    };
    let permit = Arc::clone(&bounds.subscribers).try_acquire_owned().map_err(|_| {
        Error::new(
            ErrorCode::Busy,
            "as many event streams are open as this node serves; retry later",
        )
    })?;
    if matches!(role, crate::auth::Role::Regulator | crate::auth::Role::CentralBank(_)) {
        reader.record(AUDIT_SUBJECT_ALL)?;
    }
    let caller = reader.caller.clone();
    let cursor = EventCursor {
        _permit: permit,
        caller,
        heights: chain.subscribe_height(),
        chain,
        next_height: after.map_or(query.from_height.unwrap_or(0), |(height, _, _)| height),
        after,
        buffered: VecDeque::new(),
    };
    let stream = futures::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(record) = cursor.buffered.pop_front() {
                let position = (record.height, record.tx_index, record.event_index);
                if cursor.after.is_some_and(|after| position <= after)
                    || !crate::auth::event_visible(&cursor.caller, &record)
                {
                    continue;
                }
                let data = serde_json::to_string(&record).expect("event records serialize");
                let event = SseEvent::default().id(record.id()).data(data);
                return Some((Ok(event), cursor));
            }
            let head = *cursor.heights.borrow_and_update();
            if cursor.next_height <= head {
                let chain = Arc::clone(&cursor.chain);
                let height = cursor.next_height;
                let records = tokio::task::spawn_blocking(move || chain.events_at(height))
                    .await
                    .ok()?;
                cursor.buffered.extend(records);
                cursor.next_height += 1;
                continue;
            }
            cursor.heights.changed().await.ok()?;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_millis(EVENT_KEEP_ALIVE_MS))))
}

async fn metrics(State(chain): State<Arc<Chain>>) -> Response {
    let text = blocking(move || chain.metrics.render(chain.head().height, chain.mempool.len()))
        .await
        .unwrap_or_default();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
