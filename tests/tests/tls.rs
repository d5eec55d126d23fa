//! TLS end to end with the CLI (issue 9): a node serving https with a certificate from a test
//! CA (made here with the openssl command line), the CLI trusting that CA with `--ca`, signed
//! reads and a payment over TLS; a client that does not trust the CA, or speaks plain HTTP, gets
//! nothing; with mutual TLS, a client without a certificate from the client CA gets nothing.

use corridor_tests::bin;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (`{name}.pem`, `{name}.key`) and a leaf it signs (`{leaf}.pem`, `{leaf}.key`).
fn ca_and_leaf(dir: &Path, name: &str, leaf: &str, extensions: &str) {
    let (ca_pem, ca_key) = (format!("{name}.pem"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &ca_key,
            "-out",
            &ca_pem,
            "-days",
            "1",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    let (leaf_pem, leaf_key, leaf_csr) = (format!("{leaf}.pem"), format!("{leaf}.key"), format!("{leaf}.csr"));
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &leaf_key,
            "-out",
            &leaf_csr,
            "-subj",
            &format!("/CN={leaf}"),
        ],
    );
    let extfile = format!("{leaf}.ext");
    std::fs::write(dir.join(&extfile), extensions).expect("write extensions");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &leaf_csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &leaf_pem,
            "-days",
            "1",
            "-extfile",
            &extfile,
        ],
    );
}

struct TlsNode {
    child: Child,
    rpc: String,
    data_dir: PathBuf,
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsNode {
    fn start(dir: &Path, name: &str, client_ca: Option<&Path>) -> TlsNode {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let data_dir = dir.join(name);
        let mut command = Command::new(bin("corridord"));
        command
            .args(["dev", "--data-dir"])
            .arg(&data_dir)
            .args(["--rpc-addr", &format!("127.0.0.1:{port}"), "--block-interval-ms", "10"])
            .arg("--tls-cert")
            .arg(dir.join("node.pem"))
            .arg("--tls-key")
            .arg(dir.join("node.key"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(ca) = client_ca {
            command.arg("--tls-client-ca").arg(ca);
        }
        let child = command.spawn().expect("start corridord");
        TlsNode {
            child,
            rpc: format!("https://127.0.0.1:{port}"),
            data_dir,
        }
    }

    fn cli(&self, tls: &[&str], args: &[&str]) -> Output {
        Command::new(bin("corridor"))
            .env_remove("CORRIDOR_KEY")
            .env_remove("CORRIDOR_CA")
            .args(["--rpc", &self.rpc])
            .args(tls)
            .args(args)
            .output()
            .expect("run corridor")
    }

    fn key(&self, account: &str) -> String {
        self.data_dir
            .join("keys")
            .join(format!("{account}.key"))
            .display()
            .to_string()
    }

    /// Wait (bounded) until `tls` args get a status.
    fn wait_ready(&self, tls: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.cli(tls, &["status"]).status.success() {
            assert!(Instant::now() < deadline, "node did not answer over TLS");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_cli_speaks_tls_and_mutual_tls_to_a_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let server_ext =
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
    let client_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
    ca_and_leaf(d, "ca", "node", server_ext);
    ca_and_leaf(d, "client-ca", "bank-client", client_ext);
    ca_and_leaf(d, "rogue-ca", "rogue-client", client_ext);
    let ca = d.join("ca.pem").display().to_string();

    let node = TlsNode::start(d, "chain", None);
    let trusting = ["--ca", ca.as_str()];
    node.wait_ready(&trusting);
    // Signed, scoped reads and a payment, over TLS.
    let balance = node.cli(
        &trusting,
        &["--json", "--key", &node.key("acme@icbc-cn"), "balance", "acme@icbc-cn"],
    );
    assert!(balance.status.success(), "{}", text(&balance));
    let paid = node.cli(
        &trusting,
        &[
            "--json",
            "--key",
            &node.key("acme@icbc-cn"),
            "transfer",
            "--to",
            "harbour@boc-hk",
            "--amount",
            "1.25",
            "--currency",
            "CNY",
        ],
    );
    assert!(paid.status.success(), "{}", text(&paid));
    // A client that does not trust the node's CA, or trusts another CA, gets nothing.
    let rogue_ca = d.join("rogue-ca.pem").display().to_string();
    for tls in [vec![], vec!["--ca", rogue_ca.as_str()]] {
        let refused = node.cli(&tls, &["status"]);
        assert!(!refused.status.success(), "{tls:?}: {}", text(&refused));
        assert_eq!(refused.status.code(), Some(3), "transport failure: {}", text(&refused));
    }
    // Plain HTTP to the TLS port gets no answer.
    let plain = node.rpc.replace("https://", "http://");
    let refused = Command::new(bin("corridor"))
        .args(["--rpc", &plain, "status"])
        .output()
        .expect("run corridor");
    assert!(!refused.status.success(), "{}", text(&refused));
    drop(node);

    // Mutual TLS: only clients with a certificate from the client CA get a connection.
    let client_ca = d.join("client-ca.pem");
    let node = TlsNode::start(d, "mtls", Some(&client_ca));
    let (cert, key) = (d.join("bank-client.pem"), d.join("bank-client.key"));
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let with_identity = [
        "--ca",
        ca.as_str(),
        "--client-cert",
        cert.as_str(),
        "--client-key",
        key.as_str(),
    ];
    node.wait_ready(&with_identity);
    let read = node.cli(
        &with_identity,
        &["--key", &node.key("icbc-cn"), "balance", "acme@icbc-cn"],
    );
    assert!(read.status.success(), "{}", text(&read));
    let (rogue_cert, rogue_key) = (d.join("rogue-client.pem"), d.join("rogue-client.key"));
    let (rogue_cert, rogue_key) = (rogue_cert.display().to_string(), rogue_key.display().to_string());
    let rogue = [
        "--ca",
        ca.as_str(),
        "--client-cert",
        rogue_cert.as_str(),
        "--client-key",
        rogue_key.as_str(),
    ];
    for tls in [&trusting[..], &rogue[..]] {
        let refused = node.cli(tls, &["status"]);
        assert!(!refused.status.success(), "{tls:?}: {}", text(&refused));
    }
}

#[test]
fn a_bad_certificate_stops_the_node_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("node.pem"), "not a certificate").expect("write");
    std::fs::write(d.join("node.key"), "not a key").expect("write");
    let output = Command::new(bin("corridord"))
        .args(["dev", "--data-dir"])
        .arg(d.join("chain"))
        .args(["--rpc-addr", "127.0.0.1:0", "--tls-cert"])
        .arg(d.join("node.pem"))
        .arg("--tls-key")
        .arg(d.join("node.key"))
        .output()
        .expect("run corridord");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("tls"),
        "{}",
        text(&output)
    );
}
