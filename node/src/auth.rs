//! Who is asking, and what they may read (ADR 0031).
//!
//! Rules this module keeps:
//! - A request is authenticated once, here, before any handler runs: the signature headers of
//!   `corridor_sdk::request_auth` are checked (key known, timestamp within the window,
//!   signature over method, path, query, body hash and timestamp). A request without them is
//!   `Anonymous`; a request with bad ones is refused with `bad_request_signature` or
//!   `request_expired`, whatever it asked for.
//! - Scope is decided from the caller and the id asked about alone, before any lookup, so a
//!   refusal (`403 forbidden`) says nothing about whether the thing exists.
//! - Roles come from genesis: a regulator sees everything; a central bank sees its own and
//!   every holding of the currencies it issues (other balances filtered out); a bank sees
//!   itself and its customers (`name@bank`); any other account sees itself.
//! - A read of an account's data by anyone other than that account or its sponsoring bank is
//!   `audited` (see `audit.rs`).

use crate::audit::AuditLog;
use crate::chain::Chain;
use corridor_sdk::api::{AccountView, EventRecord, HistoryPage};
use corridor_sdk::crypto::{PublicKey, Signature};
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::limits::HTTP_BODY_BYTES_MAX;
use corridor_sdk::request_auth::{
    HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, KEY_HEADER_BYTES_MAX, REQUEST_SKEW_MS_MAX, RequestToSign,
    SIGNATURE_HEADER_BYTES_MAX, request_signing_bytes,
};
use corridor_sdk::{AccountId, CurrencyCode, Event, Receipt};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What the caller is, by genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    Regulator,
    /// Issues these currencies.
    CentralBank(BTreeSet<CurrencyCode>),
    /// Any other institution (an id without `@`): sponsors `name@bank` customers.
    Bank,
    /// A customer of a bank.
    Customer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    Anonymous,
    Account { id: AccountId, role: Role },
}

/// How much of one account's data the caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    Full,
    /// Only holdings and events in these currencies (a central bank reading others).
    Currencies(BTreeSet<CurrencyCode>),
}

/// A permitted read, and whether it must be audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub access: Access,
    pub audited: bool,
}

pub(crate) fn forbidden() -> Error {
    Error::new(
        ErrorCode::Forbidden,
        "not in the caller's scope (sign the request with an account key that may read it)",
    )
}

fn bad_signature(why: &str) -> Error {
    Error::new(ErrorCode::BadRequestSignature, format!("request signature: {why}"))
}

impl Caller {
    pub fn id(&self) -> Option<&AccountId> {
        match self {
            Caller::Anonymous => None,
            Caller::Account { id, .. } => Some(id),
        }
    }

    pub fn is_regulator(&self) -> bool {
        matches!(
            self,
            Caller::Account {
                role: Role::Regulator,
                ..
            }
        )
    }

    /// May the caller read `target`'s account data, and how much? Decided from ids alone.
    pub fn account_grant(&self, target: &AccountId) -> Result<Grant, Error> {
        let Caller::Account { id, role } = self else {
            return Err(forbidden());
        };
        let own = id == target || target.sponsor().as_ref() == Some(id);
        if own {
            return Ok(Grant {
                access: Access::Full,
                audited: false,
            });
        }
        match role {
            Role::Regulator => Ok(Grant {
                access: Access::Full,
                audited: true,
            }),
            Role::CentralBank(currencies) => Ok(Grant {
                access: Access::Currencies(currencies.clone()),
                audited: true,
            }),
            Role::Bank | Role::Customer => Err(forbidden()),
        }
    }

    /// Whether the caller may see `event` in full: it touches an account the caller may read
    /// in full, or (a central bank) moves a currency it issues. Regulators see all.
    pub fn sees_event(&self, event: &Event) -> bool {
        let Caller::Account { id, role } = self else {
            return false;
        };
        if *role == Role::Regulator {
            return true;
        }
        if event
            .accounts()
            .into_iter()
            .any(|account| account == id || account.sponsor().as_ref() == Some(id))
        {
            return true;
        }
        match (role, event_currency(event)) {
            (Role::CentralBank(currencies), Some(code)) => currencies.contains(code),
            _ => false,
        }
    }

    /// Whether the caller may see a transaction: it may read the sender in full, or sees
    /// one of its events.
    pub fn sees_receipt(&self, receipt: &Receipt) -> bool {
        matches!(
            self.account_grant(&receipt.sender),
            Ok(Grant {
                access: Access::Full,
                ..
            })
        ) || receipt.events.iter().any(|event| self.sees_event(event))
    }
}

fn event_currency(event: &Event) -> Option<&CurrencyCode> {
    match event {
        Event::Minted { currency, .. } | Event::Burned { currency, .. } | Event::Transferred { currency, .. } => {
            Some(currency)
        }
        _ => None,
    }
}

/// Keep only what `access` allows of an account view.
pub(crate) fn filter_account(mut view: AccountView, access: &Access) -> AccountView {
    if let Access::Currencies(currencies) = access {
        view.balances.retain(|code, _| currencies.contains(code));
    }
    view
}

/// Keep only the history entries `access` allows (a central bank: its currencies' events).
pub(crate) fn filter_history(mut page: HistoryPage, access: &Access) -> HistoryPage {
    if let Access::Currencies(currencies) = access {
        page.entries
            .retain(|entry| event_currency(&entry.record.event).is_some_and(|code| currencies.contains(code)));
    }
    page
}

pub(crate) fn event_visible(caller: &Caller, record: &EventRecord) -> bool {
    caller.sees_event(&record.event)
}

/// The caller's role by genesis.
pub(crate) fn role_of(chain: &Chain, id: &AccountId) -> Role {
    if chain.is_regulator(id) {
        return Role::Regulator;
    }
    let issued = chain.issued_by(id);
    if !issued.is_empty() {
        return Role::CentralBank(issued);
    }
    if id.sponsor().is_none() {
        Role::Bank
    } else {
        Role::Customer
    }
}

/// The signature headers of one request, as received.
pub(crate) struct SignedHeaders<'a> {
    pub key: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

impl<'a> SignedHeaders<'a> {
    pub fn from_map(headers: &'a axum::http::HeaderMap) -> SignedHeaders<'a> {
        let get = |name: &str| headers.get(name).map(|value| value.to_str().unwrap_or("\u{0}"));
        SignedHeaders {
            key: get(HEADER_KEY),
            timestamp: get(HEADER_TIMESTAMP),
            signature: get(HEADER_SIGNATURE),
        }
    }

    pub fn present(&self) -> bool {
        self.key.is_some() || self.timestamp.is_some() || self.signature.is_some()
    }
}

/// A request's signature headers that passed every check that needs neither the body nor
/// a signature verification.
pub(crate) struct Claimed {
    public_key: PublicKey,
    signature: Signature,
    timestamp_ms: u64,
    owner: AccountId,
}

/// The cheap checks, before the body is read or anything verified: all three headers, their
/// sizes, the timestamp window, the key's form, and that an account holds the key. `None`:
/// no signature headers at all (anonymous).
pub(crate) fn claim(chain: &Chain, headers: &SignedHeaders<'_>, now_ms: u64) -> Result<Option<Claimed>, Error> {
    if !headers.present() {
        return Ok(None);
    }
    let (Some(key), Some(timestamp), Some(signature)) = (headers.key, headers.timestamp, headers.signature) else {
        return Err(bad_signature(&format!(
            "all of {HEADER_KEY}, {HEADER_TIMESTAMP} and {HEADER_SIGNATURE} are needed"
        )));
    };
    if key.len() > KEY_HEADER_BYTES_MAX || signature.len() > SIGNATURE_HEADER_BYTES_MAX {
        return Err(bad_signature("header too long"));
    }
    let timestamp_ms: u64 = timestamp
        .parse()
        .map_err(|_| bad_signature("timestamp is not milliseconds since the epoch"))?;
    if timestamp_ms.abs_diff(now_ms) > REQUEST_SKEW_MS_MAX {
        return Err(Error::new(
            ErrorCode::RequestExpired,
            format!("timestamp {timestamp_ms} is more than {REQUEST_SKEW_MS_MAX} ms from the node's clock {now_ms}"),
        ));
    }
    let public_key = PublicKey::from_text(key).map_err(|_| bad_signature("not a public key"))?;
    let signature_bytes = hex::decode(signature).map_err(|_| bad_signature("signature is not hex"))?;
    let signature = Signature::from_bytes(public_key.scheme(), &signature_bytes)
        .map_err(|_| bad_signature("not a signature of the key's scheme"))?;
    // Unknown key and wrong signature answer the same: the refusal reveals no account.
    let owner = chain.key_owner(&public_key).ok_or_else(refused)?;
    Ok(Some(Claimed {
        public_key,
        signature,
        timestamp_ms,
        owner,
    }))
}

fn refused() -> Error {
    bad_signature("no account's current key signed this request")
}

/// Verify the claimed signature over the request (with its body now read). Returns the caller
/// and the hex SHA-256 of the signed bytes (the request's id in the audit log).
pub(crate) fn verify(chain: &Chain, claimed: Claimed, unsigned: RequestToSign<'_>) -> Result<(Caller, String), Error> {
    let request = RequestToSign {
        timestamp_ms: claimed.timestamp_ms,
        ..unsigned
    };
    let message = request_signing_bytes(&request, &claimed.public_key);
    claimed
        .public_key
        .verify(&message, &claimed.signature)
        .map_err(|_| refused())?;
    let role = role_of(chain, &claimed.owner);
    let request_id = hex::encode(corridor_sdk::HashAlgorithm::Sha256.digest(&message).0);
    Ok((
        Caller::Account {
            id: claimed.owner,
            role,
        },
        request_id,
    ))
}

/// What the authentication layer leaves for handlers: the caller, the request's id and line
/// for the audit log, and the log itself.
#[derive(Clone)]
pub(crate) struct Reader {
    pub caller: Caller,
    request_id: String,
    request_line: String,
    audit: Arc<AuditLog>,
}

impl Reader {
    /// May the caller read `target`? Audited reads are recorded (and synced) here, before
    /// anything is looked up or answered.
    pub fn grant(&self, target: &AccountId) -> Result<Grant, Error> {
        let grant = self.caller.account_grant(target)?;
        if grant.audited {
            self.record(target.as_str())?;
        }
        Ok(grant)
    }

    /// Record a read of `subject` (an account id, or `*`) by a caller that is not its owner.
    pub fn record(&self, subject: &str) -> Result<(), Error> {
        let Some(reader) = self.caller.id() else {
            return Err(forbidden());
        };
        self.audit.record(
            reader,
            subject,
            &self.request_line,
            &self.request_id,
            crate::chain::now_ms(),
        )
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Reader {
    type Rejection = crate::api::ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Reader, Self::Rejection> {
        parts
            .extensions
            .get::<Reader>()
            .cloned()
            .ok_or_else(|| Error::new(ErrorCode::Unavailable, "request was not authenticated").into())
    }
}

/// The axum layer: authenticate every request once, before routing to a handler.
pub(crate) async fn layer(
    axum::extract::State((chain, audit, rates)): axum::extract::State<(
        Arc<Chain>,
        Arc<AuditLog>,
        Arc<crate::bounds::Rates>,
    )>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let (parts, body) = request.into_parts();
    let headers = SignedHeaders::from_map(&parts.headers);
    let refuse = |error: Error| {
        chain.metrics.rejected(error.code);
        crate::api::ApiError::from(error).into_response()
    };
    // The cheap checks come before the body is read or any signature verified.
    let claimed = match claim(&chain, &headers, crate::chain::now_ms()) {
        Ok(claimed) => claimed,
        Err(error) => return refuse(error),
    };
    let (body, caller, request_id) = match claimed {
        None => (body, Caller::Anonymous, String::new()),
        Some(claimed) => {
            // Only a signed request needs its body now (to hash it); others stream on untouched.
            let bytes = match axum::body::to_bytes(body, HTTP_BODY_BYTES_MAX).await {
                Ok(bytes) => bytes,
                Err(_) => {
                    return refuse(Error::new(
                        ErrorCode::TooLarge,
                        format!("body over {HTTP_BODY_BYTES_MAX} bytes"),
                    ));
                }
            };
            let unsigned = RequestToSign {
                genesis_hash: chain.genesis_hash(),
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                body: &bytes,
                timestamp_ms: 0,
            };
            let (caller, request_id) = match verify(&chain, claimed, unsigned) {
                Ok(verified) => verified,
                Err(error) => return refuse(error),
            };
            if let Some(account) = caller.id()
                && !rates.take(account, crate::chain::now_ms())
            {
                return refuse(Error::new(
                    ErrorCode::RateLimited,
                    format!("{account} is over its request rate; retry shortly"),
                ));
            }
            (axum::body::Body::from(bytes), caller, request_id)
        }
    };
    let request_line = match parts.uri.query() {
        Some(query) => format!("{} {}?{query}", parts.method, parts.uri.path()),
        None => format!("{} {}", parts.method, parts.uri.path()),
    };
    let mut request = axum::extract::Request::from_parts(parts, body);
    request.extensions_mut().insert(Reader {
        caller,
        request_id,
        request_line,
        audit,
    });
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use corridor_sdk::{Amount, Hash};

    fn id(text: &str) -> AccountId {
        AccountId::new(text).expect("id")
    }

    fn cny() -> CurrencyCode {
        CurrencyCode::new("CNY").expect("code")
    }

    fn caller(name: &str, role: Role) -> Caller {
        Caller::Account { id: id(name), role }
    }

    /// Each role against each target: the whole scope table.
    #[test]
    fn scope_table() {
        let regulator = caller("regulator", Role::Regulator);
        let pboc = caller("pboc", Role::CentralBank(BTreeSet::from([cny()])));
        let icbc = caller("icbc-cn", Role::Bank);
        let acme = caller("acme@icbc-cn", Role::Customer);
        let full = |audited| {
            Ok(Grant {
                access: Access::Full,
                audited,
            })
        };
        let grant = |c: &Caller, t: &str| c.account_grant(&id(t));
        assert_eq!(grant(&regulator, "acme@icbc-cn"), full(true));
        assert_eq!(grant(&regulator, "regulator"), full(false));
        assert_eq!(
            grant(&pboc, "harbour@boc-hk"),
            Ok(Grant {
                access: Access::Currencies(BTreeSet::from([cny()])),
                audited: true
            })
        );
        assert_eq!(grant(&pboc, "pboc"), full(false));
        assert_eq!(grant(&icbc, "icbc-cn"), full(false));
        assert_eq!(grant(&icbc, "acme@icbc-cn"), full(false));
        assert_eq!(grant(&acme, "acme@icbc-cn"), full(false));
        let refused = |c: &Caller, t: &str| grant(c, t).map_err(|e| e.code) == Err(ErrorCode::Forbidden);
        assert!(refused(&icbc, "harbour@boc-hk"));
        assert!(refused(&icbc, "boc-hk"));
        assert!(refused(&icbc, "pboc"));
        assert!(refused(&acme, "icbc-cn"), "a customer does not see its bank");
        assert!(refused(&acme, "other@icbc-cn"));
        // Not existing is refused the same way: nothing was looked up.
        assert!(refused(&acme, "no-such@nowhere"));
        assert!(refused(&Caller::Anonymous, "acme@icbc-cn"));
    }

    #[test]
    fn events_and_views_are_filtered_by_scope() {
        let thb = CurrencyCode::new("THB").expect("code");
        let pay = |from: &str, to: &str, currency: &CurrencyCode| Event::Transferred {
            from: id(from),
            to: id(to),
            currency: currency.clone(),
            amount: Amount::from(1),
            memo: None,
        };
        let pboc = caller("pboc", Role::CentralBank(BTreeSet::from([cny()])));
        let icbc = caller("icbc-cn", Role::Bank);
        assert!(pboc.sees_event(&pay("a@x", "b@y", &cny())));
        assert!(!pboc.sees_event(&pay("a@x", "b@y", &thb)));
        assert!(icbc.sees_event(&pay("acme@icbc-cn", "b@y", &thb)));
        assert!(!icbc.sees_event(&pay("a@x", "b@y", &cny())));
        assert!(!Caller::Anonymous.sees_event(&pay("a@x", "b@y", &cny())));
        let receipt = Receipt {
            tx_hash: Hash::ZERO,
            height: 1,
            index: 0,
            sender: id("a@x"),
            outcome: corridor_sdk::Outcome::Success,
            events: vec![pay("a@x", "acme@icbc-cn", &thb)],
        };
        assert!(icbc.sees_receipt(&receipt), "its customer received money");
        assert!(!caller("boc-hk", Role::Bank).sees_receipt(&receipt));
        let view = AccountView {
            id: id("a@x"),
            public_key: corridor_sdk::PrivateKey::from_seed(corridor_sdk::Scheme::Ed25519, [1; 32])
                .expect("seed")
                .public_key(),
            keys: Vec::new(),
            threshold: 1,
            next_nonce: 0,
            frozen: false,
            frozen_by: None,
            sponsor: None,
            balances: [(cny(), Amount::from(5)), (thb.clone(), Amount::from(7))].into(),
        };
        let filtered = filter_account(view, &Access::Currencies(BTreeSet::from([cny()])));
        assert_eq!(filtered.balances.keys().collect::<Vec<_>>(), vec![&cny()]);
    }
}
