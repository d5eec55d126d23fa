//! The security suite against a running node (issue 9): each role reads outside its scope and
//! is refused with a code that says nothing about existence; bad request signatures are
//! refused; audited reads land in a hash chain that verifies; keys must prove possession.

use corridor_sdk::api::{AccountView, TxView};
use corridor_sdk::audit::{AuditPage, verify_chain};
use corridor_sdk::error::ErrorCode;
use corridor_sdk::tx::key_proof_message;
use corridor_sdk::{Amount, CurrencyCode, Operation, PrivateKey, Scheme};
use corridor_tests::{DevNode, error_code, id, now_ms, signed_headers};
use serde_json::Value;

fn pay(to: &str, currency: &str, amount: &str) -> Operation {
    Operation::transfer(
        id(to),
        CurrencyCode::new(currency).expect("code"),
        Amount::parse(amount).expect("amount"),
        None,
    )
}

fn refused(answer: &(u16, Value), status: u16, code: ErrorCode, what: &str) {
    assert_eq!(answer.0, status, "{what}: {}", answer.1);
    assert_eq!(error_code(&answer.1), code, "{what}");
}

async fn audit(node: &DevNode, signer: &str) -> AuditPage {
    let (status, body) = node.get_as(Some(signer), "/v1/audit?limit=1000").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).expect("audit JSON")
}

#[tokio::test]
async fn each_role_reads_only_its_scope_and_refusals_reveal_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    // A payment between two banks' customers, so there is history and a transaction to find.
    let paid = node
        .execute(&node.sign("acme@icbc-cn", pay("harbour@boc-hk", "CNY", "5")).await)
        .await;
    let tx_path = format!("/v1/transactions/{}", paid.tx_hash);

    // Public without a signature.
    for path in ["/v1/status", "/v1/blocks/1", "/v1/currencies"] {
        assert_eq!(node.get_as(None, path).await.0, 200, "{path}");
    }
    // Everything else needs a signature; anonymous callers learn nothing.
    for path in [
        "/v1/accounts/acme@icbc-cn",
        "/v1/accounts/nobody@icbc-cn",
        "/v1/accounts/acme@icbc-cn/history",
        "/v1/accounts/acme@icbc-cn/proof",
        tx_path.as_str(),
        "/v1/events?from_height=0",
        "/v1/audit",
    ] {
        refused(&node.get_as(None, path).await, 403, ErrorCode::Forbidden, path);
    }

    // (reader, path, allowed?)
    let table: &[(&str, &str, bool)] = &[
        // A corporate: itself only, not its bank, not a peer, not its counterparty.
        ("acme@icbc-cn", "/v1/accounts/acme@icbc-cn", true),
        ("acme@icbc-cn", "/v1/accounts/acme@icbc-cn/history", true),
        ("acme@icbc-cn", "/v1/accounts/acme@icbc-cn/proof", true),
        ("acme@icbc-cn", "/v1/accounts/icbc-cn", false),
        ("acme@icbc-cn", "/v1/accounts/harbour@boc-hk", false),
        ("acme@icbc-cn", "/v1/accounts/harbour@boc-hk/history", false),
        ("acme@icbc-cn", "/v1/accounts/harbour@boc-hk/proof", false),
        ("acme@icbc-cn", "/v1/accounts/no-such@boc-hk", false),
        // A bank: itself and its customers.
        ("icbc-cn", "/v1/accounts/icbc-cn", true),
        ("icbc-cn", "/v1/accounts/acme@icbc-cn/history", true),
        ("icbc-cn", "/v1/accounts/harbour@boc-hk", false),
        ("icbc-cn", "/v1/accounts/boc-hk/history", false),
        ("icbc-cn", "/v1/accounts/pboc", false),
        ("boc-hk", "/v1/accounts/acme@icbc-cn/proof", false),
        // A central bank: holdings of its currency anywhere, but no whole-record proof.
        ("pboc", "/v1/accounts/harbour@boc-hk", true),
        ("pboc", "/v1/accounts/harbour@boc-hk/history", true),
        ("pboc", "/v1/accounts/harbour@boc-hk/proof", false),
        // A regulator: everything.
        ("regulator", "/v1/accounts/harbour@boc-hk/proof", true),
        ("regulator", "/v1/accounts/icbc-cn/history", true),
    ];
    for (reader, path, allowed) in table {
        let answer = node.get_as(Some(reader), path).await;
        if *allowed {
            assert_eq!(answer.0, 200, "{reader} {path}: {}", answer.1);
        } else {
            refused(&answer, 403, ErrorCode::Forbidden, &format!("{reader} {path}"));
        }
    }
    // Out of scope, an account that exists and one that does not answer byte for byte alike.
    let present = node.get_as(Some("acme@icbc-cn"), "/v1/accounts/harbour@boc-hk").await;
    let absent = node.get_as(Some("acme@icbc-cn"), "/v1/accounts/ghost@boc-hk").await;
    assert_eq!(present, absent);

    // The central bank sees only its currency in another bank's customer's holdings.
    let (_, body) = node.get_as(Some("pboc"), "/v1/accounts/harbour@boc-hk").await;
    let seen: AccountView = serde_json::from_value(body).expect("account");
    let full = node.account("harbour@boc-hk").await;
    assert!(full.balances.len() > 1, "harbour holds HKD and CNY: {full:?}");
    assert_eq!(
        seen.balances.keys().map(|c| c.as_str()).collect::<Vec<_>>(),
        vec!["CNY"]
    );

    // Transactions: the sender, the receiver's bank and the regulator see it; others do not,
    // and a hash nobody sent answers the same refusal.
    for reader in ["acme@icbc-cn", "icbc-cn", "boc-hk", "harbour@boc-hk", "regulator"] {
        let (status, body) = node.get_as(Some(reader), &tx_path).await;
        assert_eq!(status, 200, "{reader}: {body}");
        let view: TxView = serde_json::from_value(body).expect("tx view");
        let bytes = hex::decode(view.tx.expect("signed bytes as evidence")).expect("hex");
        let signed = corridor_sdk::SignedTransaction::from_bytes(&bytes).expect("decodes");
        assert_eq!(signed.verify_signature(), Ok(()));
    }
    let unknown = format!("/v1/transactions/{}", "ab".repeat(32));
    for reader in ["kbank-th", "siam-rice@kbank-th"] {
        let seen = node.get_as(Some(reader), &tx_path).await;
        refused(&seen, 403, ErrorCode::Forbidden, reader);
        assert_eq!(seen, node.get_as(Some(reader), &unknown).await);
    }
    refused(
        &node.get_as(Some("regulator"), &unknown).await,
        404,
        ErrorCode::NotFound,
        "regulator",
    );

    // Key lookups: one's own key, yes; another's key or a key nobody holds, alike refused.
    let own = format!("/v1/keys/{}", node.key("acme@icbc-cn").public_key());
    assert_eq!(node.get_as(Some("acme@icbc-cn"), &own).await.0, 200);
    let other = format!("/v1/keys/{}", node.key("harbour@boc-hk").public_key());
    let nobody = format!(
        "/v1/keys/{}",
        PrivateKey::generate(Scheme::Ed25519).expect("key").public_key()
    );
    let a = node.get_as(Some("acme@icbc-cn"), &other).await;
    refused(&a, 403, ErrorCode::Forbidden, "another's key");
    assert_eq!(a, node.get_as(Some("acme@icbc-cn"), &nobody).await);
}

#[tokio::test]
async fn forged_stale_and_replayed_request_signatures_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let path = "/v1/accounts/acme@icbc-cn";
    let send = |headers: Vec<(&'static str, String)>, path: &str| {
        let mut request = node.http.get(format!("{}{path}", node.rpc));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.expect("GET");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let acme = node.key("acme@icbc-cn");
    let good = signed_headers(node.genesis_hash, &acme, "GET", path, b"", now_ms()).to_vec();
    assert_eq!(send(good.clone(), path).await.0, 200);
    // The same headers on another path (a signature is for one request).
    let moved = send(good.clone(), "/v1/accounts/acme@icbc-cn/history").await;
    refused(&moved, 401, ErrorCode::BadRequestSignature, "moved to another path");
    // Claiming acme's key but signing with another.
    let mut forged = signed_headers(
        node.genesis_hash,
        &node.key("harbour@boc-hk"),
        "GET",
        path,
        b"",
        now_ms(),
    )
    .to_vec();
    forged[0].1 = acme.public_key().to_text();
    refused(&send(forged, path).await, 401, ErrorCode::BadRequestSignature, "forged");
    // A key no account holds, signing correctly.
    let stranger = PrivateKey::generate(Scheme::Sm2).expect("key");
    let stranger_headers = signed_headers(node.genesis_hash, &stranger, "GET", path, b"", now_ms()).to_vec();
    refused(
        &send(stranger_headers, path).await,
        401,
        ErrorCode::BadRequestSignature,
        "stranger",
    );
    // Too old, and too far ahead.
    for skew in [-120_000i64, 120_000] {
        let at = now_ms().saturating_add_signed(skew);
        let stale = signed_headers(node.genesis_hash, &acme, "GET", path, b"", at).to_vec();
        refused(&send(stale, path).await, 401, ErrorCode::RequestExpired, "stale");
    }
    // Half the headers, garbage in each.
    refused(
        &send(good[..2].to_vec(), path).await,
        401,
        ErrorCode::BadRequestSignature,
        "missing signature",
    );
    for index in 0..3 {
        let mut garbage = good.clone();
        garbage[index].1 = "zz:zz".into();
        refused(
            &send(garbage, path).await,
            401,
            ErrorCode::BadRequestSignature,
            "garbage",
        );
    }
    let mut huge = good.clone();
    huge[2].1 = "ab".repeat(10_000);
    refused(&send(huge, path).await, 401, ErrorCode::BadRequestSignature, "huge");
}

/// Two dev chains with the same name, the same accounts and the same keys (the second is a copy
/// of the first's genesis one millisecond later): before ADR 0042 a payment on one replayed on
/// the other, as both were `corridor-dev`. Now what is signed for one genesis is refused by the
/// other — transactions with `wrong_chain`, key proofs with `bad_key_proof`, signed reads as
/// bad signatures — and changes nothing there.
#[tokio::test]
async fn what_is_signed_for_one_chain_is_refused_by_another_with_the_same_name_and_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let here = DevNode::start(&dir.path().join("here")).await;
    let twin_dir = dir.path().join("twin");
    std::fs::create_dir_all(twin_dir.join("keys")).expect("twin dirs");
    for entry in std::fs::read_dir(here.data_dir.join("keys")).expect("keys") {
        let entry = entry.expect("key file");
        std::fs::copy(entry.path(), twin_dir.join("keys").join(entry.file_name())).expect("copy key");
    }
    let mut genesis: Value =
        serde_json::from_slice(&std::fs::read(here.data_dir.join("genesis.json")).expect("genesis")).expect("JSON");
    genesis["genesis_time_ms"] = (genesis["genesis_time_ms"].as_u64().expect("time") + 1).into();
    std::fs::write(
        twin_dir.join("genesis.json"),
        serde_json::to_vec(&genesis).expect("JSON"),
    )
    .expect("write");
    let twin = DevNode::start(&twin_dir).await;

    let (here_status, twin_status) = (here.status().await, twin.status().await);
    assert_eq!(here_status.chain_id, "corridor-dev");
    assert_eq!(twin_status.chain_id, "corridor-dev");
    assert_eq!(
        here.key("acme@icbc-cn").public_key(),
        twin.key("acme@icbc-cn").public_key()
    );
    assert_eq!(here_status.genesis_hash, here.genesis_hash);
    assert_ne!(
        here.genesis_hash, twin.genesis_hash,
        "same name and keys, another genesis"
    );

    // acme pays on the twin; the same bytes sent here are refused and change nothing.
    let acme_before = here.account("acme@icbc-cn").await;
    let harbour_before = here.account("harbour@boc-hk").await;
    let on_twin = twin.sign("acme@icbc-cn", pay("harbour@boc-hk", "CNY", "5")).await;
    assert_eq!(
        on_twin.tx.nonce, acme_before.next_nonce,
        "a replay would fit the nonce here"
    );
    twin.execute(&on_twin).await;
    let refusal = here.submit(&on_twin).await.expect_err("replay refused");
    assert_eq!(refusal, (400, ErrorCode::WrongChain));
    let (status, body) = here
        .post(
            "/v1/transactions",
            &serde_json::json!({ "tx": hex::encode(on_twin.to_bytes()) }),
        )
        .await;
    assert_eq!(status, 400);
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains(&twin.genesis_hash.to_hex()) && message.contains(&here.genesis_hash.to_hex()),
        "the refusal names both genesis hashes: {message}"
    );
    let batch = here.submit_batch(std::slice::from_ref(&on_twin)).await;
    assert_eq!(
        batch.results[0].error.as_ref().map(|e| e.code),
        Some(ErrorCode::WrongChain)
    );
    // Relabelled for this chain, the twin's signature no longer verifies.
    let mut relabelled = on_twin.clone();
    relabelled.tx.genesis_hash = here.genesis_hash;
    assert_eq!(
        here.submit(&relabelled).await.expect_err("refused"),
        (400, ErrorCode::BadSignature)
    );

    // A registration here whose key proof was made for the twin.
    let newcomer = PrivateKey::generate(Scheme::Ed25519).expect("key");
    let registration = Operation::RegisterAccountWithProof {
        account: id("newco@icbc-cn"),
        public_key: newcomer.public_key(),
        proof: newcomer.sign(&key_proof_message(
            &twin.genesis_hash,
            &id("newco@icbc-cn"),
            &newcomer.public_key(),
        )),
    };
    let registration = here.sign("icbc-cn", registration).await;
    assert_eq!(
        here.submit(&registration).await.expect_err("refused").1,
        ErrorCode::BadKeyProof
    );

    // A read signed for the twin is good there and refused here.
    let path = "/v1/accounts/acme@icbc-cn";
    let headers = signed_headers(twin.genesis_hash, &twin.key("acme@icbc-cn"), "GET", path, b"", now_ms());
    let send = |node: &DevNode| {
        let mut request = node.http.get(format!("{}{path}", node.rpc));
        for (name, value) in headers.clone() {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.expect("GET");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    assert_eq!(send(&twin).await.0, 200);
    refused(
        &send(&here).await,
        401,
        ErrorCode::BadRequestSignature,
        "read signed for the twin",
    );

    // Nothing moved here: balances, nonces, the head.
    assert_eq!(here.account("acme@icbc-cn").await, acme_before);
    assert_eq!(here.account("harbour@boc-hk").await, harbour_before);
    let after = here.status().await;
    assert_eq!(
        (after.height, after.state_root),
        (here_status.height, here_status.state_root)
    );
}

#[tokio::test]
async fn audited_reads_are_chained_and_shown_to_the_customers_bank_and_regulators() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("chain");
    let node = DevNode::start(&data_dir).await;
    let before = audit(&node, "regulator").await.entries.len();
    // Reads by the owner or its bank are not audited; by a regulator or central bank they are.
    for (reader, path) in [
        ("acme@icbc-cn", "/v1/accounts/acme@icbc-cn"),
        ("icbc-cn", "/v1/accounts/acme@icbc-cn/history"),
        ("regulator", "/v1/accounts/acme@icbc-cn"),
        ("pboc", "/v1/accounts/harbour@boc-hk"),
        ("regulator", "/v1/accounts/siam-rice@kbank-th/proof"),
    ] {
        assert_eq!(node.get_as(Some(reader), path).await.0, 200, "{reader} {path}");
    }
    let log = audit(&node, "regulator").await;
    assert_eq!(verify_chain(&log.entries), Ok(()));
    let new: Vec<(String, String)> = log.entries[before..]
        .iter()
        .map(|e| (e.reader.to_string(), e.subject.clone()))
        .collect();
    assert_eq!(
        new,
        vec![
            ("regulator".to_string(), "acme@icbc-cn".to_string()),
            ("pboc".to_string(), "harbour@boc-hk".to_string()),
            ("regulator".to_string(), "siam-rice@kbank-th".to_string()),
        ]
    );
    // ICBC sees the regulator's read of its customer, not reads of other banks' customers.
    let icbc = audit(&node, "icbc-cn").await;
    let subjects: Vec<&str> = icbc.entries.iter().map(|e| e.subject.as_str()).collect();
    assert!(subjects.contains(&"acme@icbc-cn"), "{subjects:?}");
    assert!(
        !subjects
            .iter()
            .any(|s| s.ends_with("@boc-hk") || s.ends_with("@kbank-th"))
    );
    assert!(icbc.entries.iter().all(|e| e.verify()));
    // A corporate sees who read it; the CLI shows the log and verifies the chain.
    let acme = audit(&node, "acme@icbc-cn").await;
    assert!(acme.entries.iter().all(|e| e.subject == "acme@icbc-cn") && !acme.entries.is_empty());
    let shown = node.cli(&["--json", "audit"]);
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let shown: Value = serde_json::from_slice(&shown.stdout).expect("json");
    assert_eq!(shown["verified"], Value::Bool(true));
    assert!(shown["entries"].as_array().expect("entries").len() >= 3);

    // The log survives a restart, and a tampered log stops the node from starting.
    node.kill9();
    let node = DevNode::start(&data_dir).await;
    assert_eq!(node.get_as(Some("regulator"), "/v1/accounts/acme@icbc-cn").await.0, 200);
    let after = audit(&node, "regulator").await;
    assert_eq!(
        verify_chain(&after.entries),
        Ok(()),
        "the chain continues across the restart"
    );
    assert_eq!(after.entries[..log.entries.len()], log.entries[..]);
    assert_eq!(after.entries.len(), log.entries.len() + 1);
    node.kill9();
    let path = data_dir.join("audit.log");
    let text = std::fs::read_to_string(&path).expect("audit log");
    std::fs::write(&path, text.replacen("\"pboc\"", "\"hkma\"", 1)).expect("tamper");
    let output = std::process::Command::new(corridor_tests::bin("corridord"))
        .args(["dev", "--data-dir"])
        .arg(&data_dir)
        .args(["--rpc-addr", "127.0.0.1:0"])
        .output()
        .expect("run corridord");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("audit log"));
}

#[tokio::test]
async fn keys_must_prove_possession_and_torsioned_keys_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let nonce = node.next_nonce("icbc-cn").await;
    let victim = node.key("harbour@boc-hk");
    let mallory = PrivateKey::generate(Scheme::Ed25519).expect("key");
    // Register someone else's key, "proven" by the registrant's own key.
    let stolen = Operation::RegisterAccountWithProof {
        account: id("mallory@icbc-cn"),
        public_key: victim.public_key(),
        proof: mallory.sign(&key_proof_message(
            &node.genesis_hash,
            &id("mallory@icbc-cn"),
            &victim.public_key(),
        )),
    };
    let stolen = node.sign_with_nonce("icbc-cn", nonce, stolen);
    assert_eq!(node.submit(&stolen).await, Err((400, ErrorCode::BadKeyProof)));
    // The same through the batch endpoint: the same code.
    let batch = node.submit_batch(std::slice::from_ref(&stolen)).await;
    assert_eq!(
        batch.results[0].error.as_ref().map(|e| e.code),
        Some(ErrorCode::BadKeyProof)
    );
    // No proof at all (the old operation).
    let bare = node.sign_with_nonce(
        "icbc-cn",
        nonce,
        Operation::register_account(id("mallory@icbc-cn"), mallory.public_key()),
    );
    assert_eq!(node.submit(&bare).await, Err((400, ErrorCode::KeyProofRequired)));
    // A torsioned twin of a real key, with a proof that verifies under the cofactored rule.
    let twin = torsioned_twin(&mallory, &node.genesis_hash);
    let twin_op = Operation::RegisterAccountWithProof {
        account: id("twin@icbc-cn"),
        public_key: twin.0.clone(),
        proof: twin.1,
    };
    let twin_tx = node.sign_with_nonce("icbc-cn", nonce, twin_op);
    assert_eq!(node.submit(&twin_tx).await, Err((400, ErrorCode::BadPublicKey)));
    // Rotating acme's key to harbour's key, proven by acme: refused.
    let acme = node.key("acme@icbc-cn");
    let rotate = Operation::RotateKeyWithProof {
        public_key: victim.public_key(),
        proof: acme.sign(&key_proof_message(
            &node.genesis_hash,
            &id("acme@icbc-cn"),
            &victim.public_key(),
        )),
    };
    let rotate = node.sign("acme@icbc-cn", rotate).await;
    assert_eq!(node.submit(&rotate).await, Err((400, ErrorCode::BadKeyProof)));
    // Nothing was registered; an honest registration with the CLI goes through.
    refused(
        &node.get("/v1/accounts/mallory@icbc-cn").await,
        404,
        ErrorCode::UnknownAccount,
        "mallory",
    );
    let key_file = dir.path().join("newco.key");
    std::fs::write(&key_file, mallory.to_pem().expect("pem")).expect("write key");
    let registered = node.cli(&[
        "--key",
        node.key_path("icbc-cn").to_str().expect("utf-8"),
        "account",
        "register",
        "--account",
        "mallory@icbc-cn",
        "--key-file",
        key_file.to_str().expect("utf-8"),
    ]);
    assert!(
        registered.status.success(),
        "{}",
        String::from_utf8_lossy(&registered.stderr)
    );
    assert_eq!(node.account("mallory@icbc-cn").await.public_key, mallory.public_key());
    // Without the private key and without a proof, the CLI refuses before sending.
    let bare_cli = node.cli(&[
        "--key",
        node.key_path("icbc-cn").to_str().expect("utf-8"),
        "account",
        "register",
        "--account",
        "other@icbc-cn",
        "--public-key",
        &PrivateKey::generate(Scheme::Ed25519)
            .expect("key")
            .public_key()
            .to_text(),
    ]);
    assert!(!bare_cli.status.success());
    assert!(String::from_utf8_lossy(&bare_cli.stderr).contains("key_proof_required"));
}

/// `A + T` for the key's point `A` and a point `T` of order 8, with a proof signed by the
/// key's owner that verifies under the cofactored rule.
fn torsioned_twin(
    owner: &PrivateKey,
    genesis_hash: &corridor_sdk::Hash,
) -> (corridor_sdk::PublicKey, corridor_sdk::Signature) {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    let PrivateKey::Ed25519(signing) = owner else {
        panic!("an ed25519 key")
    };
    let a = CompressedEdwardsY(signing.verifying_key().to_bytes())
        .decompress()
        .expect("point");
    let bytes = (a + curve25519_dalek::constants::EIGHT_TORSION[1])
        .compress()
        .to_bytes();
    let twin = corridor_sdk::PublicKey::from_bytes(Scheme::Ed25519, &bytes).expect("a canonical point");
    let message = key_proof_message(genesis_hash, &id("twin@icbc-cn"), &twin);
    let expanded = ed25519_dalek::hazmat::ExpandedSecretKey::from(&signing.to_bytes());
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(&bytes).expect("twin");
    let proof = ed25519_dalek::hazmat::raw_sign::<sha2::Sha512>(&expanded, &message, &verifying);
    let proof = corridor_sdk::Signature::Ed25519(proof.to_bytes());
    assert_eq!(twin.verify(&message, &proof), Ok(()), "the twin's proof verifies");
    (twin, proof)
}

/// Scoped authority: a central bank freezes within its jurisdiction only, never another
/// authority; the regulator reaches everyone.
#[tokio::test]
async fn a_central_bank_freezes_only_within_its_jurisdiction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    for target in ["harbour@boc-hk", "boc-hk", "hkma", "regulator", "ghost@boc-hk"] {
        let freeze = node.sign("pboc", Operation::freeze(id(target))).await;
        assert_eq!(
            node.submit(&freeze).await,
            Err((403, ErrorCode::NotAuthorized)),
            "pboc freezing {target}"
        );
    }
    node.execute(&node.sign("pboc", Operation::freeze(id("acme@icbc-cn"))).await)
        .await;
    // A central bank is frozen by a regulator's multi-signature only.
    let alone = node.sign("regulator", Operation::freeze(id("hkma"))).await;
    assert_eq!(node.submit(&alone).await, Err((403, ErrorCode::MultisigRequired)));
    let second = PrivateKey::generate(Scheme::Sm2).expect("key");
    let keys = [node.key("regulator"), second];
    let set_keys = Operation::set_keys_proven(&node.genesis_hash, &id("regulator"), &keys, 2);
    node.execute(&node.sign("regulator", set_keys).await).await;
    let together = node.sign("regulator", Operation::freeze(id("hkma"))).await;
    node.execute(&together.tx.sign_all(&keys)).await;
    assert!(node.account("acme@icbc-cn").await.frozen);
    assert!(node.account("hkma").await.frozen);
}

/// The event stream applies the same scopes: each role sees only the events it may read.
#[tokio::test]
async fn the_event_stream_shows_each_role_only_its_scope() {
    use corridor_sdk::Event;
    use futures::StreamExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    node.execute(&node.sign("acme@icbc-cn", pay("harbour@boc-hk", "CNY", "3")).await)
        .await;
    node.execute(&node.sign("siam-rice@kbank-th", pay("kbank-th", "THB", "4")).await)
        .await;
    // Every transfer event each reader gets within a bounded time: (from, to, currency).
    let transfers = |reader: &'static str| {
        let request = node.signed_get(reader, "/v1/events?from_height=0");
        async move {
            let response = request.send().await.expect("events");
            assert_eq!(response.status().as_u16(), 200, "{reader}");
            let mut body = response.bytes_stream();
            let mut text = String::new();
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(2_000);
            while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, body.next()).await {
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
            let mut seen = Vec::new();
            for line in text.lines() {
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                let record: corridor_sdk::api::EventRecord = serde_json::from_str(data.trim()).expect("record");
                if let Event::Transferred { from, to, currency, .. } = record.event {
                    seen.push((from.to_string(), to.to_string(), currency.to_string()));
                }
            }
            seen
        }
    };
    let cny = (
        "acme@icbc-cn".to_string(),
        "harbour@boc-hk".to_string(),
        "CNY".to_string(),
    );
    let thb = (
        "siam-rice@kbank-th".to_string(),
        "kbank-th".to_string(),
        "THB".to_string(),
    );
    let expectations: &[(&'static str, Vec<_>)] = &[
        ("regulator", vec![cny.clone(), thb.clone()]),
        ("boc-hk", vec![cny.clone()]),
        ("harbour@boc-hk", vec![cny.clone()]),
        ("pboc", vec![cny.clone()]),
        ("bot", vec![thb.clone()]),
        ("siam-rice@kbank-th", vec![thb.clone()]),
        ("enbd-ae", vec![]),
        ("gulf-trade@enbd-ae", vec![]),
    ];
    for (reader, expected) in expectations {
        assert_eq!(&transfers(reader).await, expected, "{reader}");
    }
}

fn cli_refused(output: &std::process::Output, code: ErrorCode) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(code.as_str()), "expected {code}: {stdout}");
}

/// Maker-checker: a corporate makes its account 2-of-3 (`corridor account set-keys`). One
/// signature moves nothing, on single submit, batch submit and the CLI alike; a signer outside
/// the set is refused; two officers signing the same built bytes offline (`tx sign`) and one
/// `tx submit --signatures-file` move the money, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_account_moves_nothing_with_one_signature() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let path = |name: &str| dir.path().join(name).display().to_string();
    let maker = node.key_path("acme@icbc-cn").display().to_string();
    let (checker_1, checker_2) = (path("checker-1.key"), path("checker-2.key"));
    corridor_tests::stdout_of_success(&node.cli(&["keygen", "--out", &checker_1]));
    corridor_tests::stdout_of_success(&node.cli(&["keygen", "--scheme", "sm2", "--out", &checker_2]));
    corridor_tests::stdout_of_success(&node.cli(&[
        "--json",
        "--key",
        &maker,
        "account",
        "set-keys",
        "--new-key",
        &maker,
        "--new-key",
        &checker_1,
        "--new-key",
        &checker_2,
        "--threshold",
        "2",
    ]));
    let acme = node.account("acme@icbc-cn").await;
    assert_eq!((acme.keys.len(), acme.threshold), (3, 2));
    let cny = |view: &AccountView| corridor_tests::balance(view, "CNY");
    let before = cny(&acme);

    let pay_cli = |keys: &[&str]| {
        let mut args = vec!["--json"];
        for (index, key) in keys.iter().enumerate() {
            args.extend([if index == 0 { "--key" } else { "--cosign-key" }, key]);
        }
        args.extend([
            "transfer",
            "--to",
            "harbour@boc-hk",
            "--amount",
            "5",
            "--currency",
            "CNY",
        ]);
        node.cli(&args)
    };
    cli_refused(&pay_cli(&[&maker]), ErrorCode::SignaturesBelowThreshold);
    let alone = node.sign("acme@icbc-cn", pay("harbour@boc-hk", "CNY", "5")).await;
    assert_eq!(
        node.submit(&alone).await,
        Err((403, ErrorCode::SignaturesBelowThreshold))
    );
    let batch = node.submit_batch(std::slice::from_ref(&alone)).await;
    assert_eq!(
        batch.results[0].error.as_ref().map(|e| e.code),
        Some(ErrorCode::SignaturesBelowThreshold),
        "the batch path answers as single submit does"
    );
    let outsider = alone.clone().cosign(&node.key("harbour@boc-hk"));
    assert_eq!(node.submit(&outsider).await, Err((403, ErrorCode::KeyMismatch)));
    let twice = alone.clone().cosign(&node.key("acme@icbc-cn"));
    assert_eq!(node.submit(&twice).await, Err((400, ErrorCode::Malformed)));
    assert_eq!(cny(&node.account("acme@icbc-cn").await), before, "nothing moved");

    // Online: the maker signs with a checker's key beside its own.
    corridor_tests::stdout_of_success(&pay_cli(&[&maker, &checker_2]));
    // Offline: the maker builds, each checker signs the same bytes, anyone submits.
    let built: Value = serde_json::from_str(&corridor_tests::stdout_of_success(&node.cli(&[
        "--json",
        "tx",
        "build",
        "transfer",
        "--from",
        "acme@icbc-cn",
        "--to",
        "harbour@boc-hk",
        "--amount",
        "7",
        "--currency",
        "CNY",
    ])))
    .expect("build JSON");
    let unsigned = built["unsigned"].as_str().expect("unsigned hex").to_owned();
    let signatures = path("signatures.txt");
    let sign = |key: &str| {
        node.cli(&[
            "--key",
            key,
            "tx",
            "sign",
            "--unsigned",
            &unsigned,
            "--out",
            &signatures,
        ])
    };
    corridor_tests::stdout_of_success(&sign(&checker_1));
    let submit = || {
        node.cli(&[
            "--json",
            "--key",
            &maker,
            "tx",
            "submit",
            "--unsigned",
            &unsigned,
            "--signatures-file",
            &signatures,
        ])
    };
    cli_refused(&submit(), ErrorCode::SignaturesBelowThreshold);
    corridor_tests::stdout_of_success(&sign(&checker_2));
    assert_eq!(
        std::fs::read_to_string(&signatures)
            .expect("signatures")
            .lines()
            .count(),
        2
    );
    let view: TxView = serde_json::from_str(&corridor_tests::stdout_of_success(&submit())).expect("tx JSON");
    assert_eq!(view.receipt.map(|r| r.outcome), Some(corridor_sdk::Outcome::Success));
    // The same signatures again are a replay: refused, and the money moved once.
    cli_refused(&submit(), ErrorCode::Duplicate);
    let after = node.account("acme@icbc-cn").await;
    assert_eq!(
        Amount::parse(&cny(&after)).expect("amount"),
        Amount::parse(&before)
            .expect("amount")
            .checked_sub(Amount::from(12))
            .expect("no underflow")
    );
}
