use super::*;

use std::net::SocketAddr;
use std::path::Path;

use rcgen::{CertificateParams, KeyPair};
use rustls_pki_types::PrivateKeyDer;

/// A self-signed certificate for `names`, valid from `not_before` to
/// `not_after` (years), and its key.
fn certificate(names: &[&str], not_before: i32, not_after: i32) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.not_before = rcgen::date_time_ymd(not_before, 1, 1);
    params.not_after = rcgen::date_time_ymd(not_after, 1, 1);
    let cert = params.self_signed(&key).expect("self-signed");
    (cert.pem(), key.serialize_pem())
}

/// A TLS server on loopback that presents `cert` to one client.
async fn broker_presenting(cert_pem: &str, key_pem: &str) -> SocketAddr {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("certificate");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Ok((tcp, _)) = listener.accept().await {
            let _ = acceptor.accept(tcp).await;
        }
    });
    addr
}

fn ca_file(dir: &Path, pem: &str) -> PathBuf {
    let f = dir.join("ca.pem");
    std::fs::write(&f, pem).expect("write CA");
    f
}

fn check(host: &str, port: u16, ca: &Path) -> CertificateCheck {
    CertificateCheck {
        host: host.to_string(),
        port,
        ca_file: Some(ca.to_path_buf()),
    }
}

/// What the check says, connecting as `host`, of a broker presenting
/// `presented` (certificate, key) to a bridge whose CA file holds `trusted`.
async fn check_says(presented: &(String, String), trusted: &str, host: &str) -> Option<String> {
    let dir = tempfile::tempdir().expect("dir");
    let addr = broker_presenting(&presented.0, &presented.1).await;
    let ca = ca_file(dir.path(), trusted);
    check(host, addr.port(), &ca)
        .run(Duration::from_secs(5))
        .await
}

#[tokio::test]
async fn a_certificate_without_the_connected_name_is_named_with_the_names_it_has() {
    let broker = certificate(&["localhost", "kafka-0.internal"], 2020, 2090);
    let said = check_says(&broker, &broker.0, "127.0.0.1")
        .await
        .expect("refused");
    assert!(said.contains("does not name \"127.0.0.1\""), "{said}");
    assert!(said.contains("localhost, kafka-0.internal"), "{said}");
    assert!(
        !said.contains("ssl.ca.location"),
        "the CA is not the problem: {said}"
    );
}

#[tokio::test]
async fn an_expired_certificate_is_named_as_expired() {
    let broker = certificate(&["localhost"], 2019, 2020);
    let said = check_says(&broker, &broker.0, "localhost")
        .await
        .expect("refused");
    assert!(said.contains("has expired"), "{said}");
}

#[tokio::test]
async fn a_certificate_from_another_ca_names_ssl_ca_location() {
    let broker = certificate(&["localhost"], 2020, 2090);
    let (other, _) = certificate(&["localhost"], 2020, 2090);
    let said = check_says(&broker, &other, "localhost")
        .await
        .expect("refused");
    assert!(
        said.contains("not signed by a CA in ssl.ca.location"),
        "{said}"
    );
}

#[tokio::test]
async fn a_good_certificate_says_nothing() {
    let broker = certificate(&["localhost"], 2020, 2090);
    assert_eq!(check_says(&broker, &broker.0, "localhost").await, None);
}

#[test]
fn the_check_targets_the_first_bootstrap_broker_only_over_tls_with_names_checked() {
    let mut cfg = KafkaConfig {
        brokers: "kafka-0:9093,kafka-1:9093".into(),
        ..KafkaConfig::default()
    };
    assert_eq!(CertificateCheck::of(&cfg), None, "plaintext");
    cfg.properties
        .insert("security.protocol".into(), "sasl_ssl".into());
    cfg.properties
        .insert("ssl.ca.location".into(), "/etc/kafka/ca.pem".into());
    assert_eq!(
        CertificateCheck::of(&cfg),
        Some(CertificateCheck {
            host: "kafka-0".into(),
            port: 9093,
            ca_file: Some("/etc/kafka/ca.pem".into()),
        })
    );
    cfg.properties.insert(
        "ssl.endpoint.identification.algorithm".into(),
        "none".into(),
    );
    assert_eq!(CertificateCheck::of(&cfg), None, "names not checked");
}
